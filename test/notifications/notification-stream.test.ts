import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";
import { authClient, signUpPatient, staffSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { draftFor, notificationClient, protocols, StreamReader } from "./notification-fixtures.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    NOTIFICATION_HEARTBEAT_INTERVAL_MS: "300",
    // Long, so a live notification arriving quickly proves the poke, not the periodic read.
    NOTIFICATION_CATCH_UP_INTERVAL_MS: "60000",
    NOTIFICATION_MAX_STREAMS_PER_PATIENT: "2",
  });
}, 60_000);
afterAll(async () => {
  await t?.close();
});

describe("TST-PT006-1 a patient receives notifications in real time on WatchNotifications", () => {
  for (const protocol of protocols) {
    it(`over ${protocol}: replays what was missed, says caught_up, then streams live ones`, async () => {
      const patient = await signUpPatient(t);
      const missed = draftFor(patient.patientId);
      await t.app.notifier.notify([missed]);
      const stream = new StreamReader(notificationClient(t, patient.interceptor, protocol), {
        parent: patient.patient,
        cursor: "n1.0",
      });
      try {
        const replay = await stream.untilCaughtUp();
        expect(replay.titles).toEqual([missed.title]);
        const live = draftFor(patient.patientId, { priority: NotificationPriority.HIGH });
        await t.app.notifier.notify([live]);
        const event = await stream.nextEvent(2000);
        expect(event.event.case).toBe("notification");
        if (event.event.case !== "notification") return;
        expect(event.event.value).toMatchObject({
          name: expect.stringMatching(new RegExp(`^${patient.patient}/notifications/[0-9a-f-]{36}$`)),
          title: live.title,
          body: live.body,
          category: NotificationCategory.CONSULTATIONS,
          priority: NotificationPriority.HIGH,
          subjectResource: live.subjectResource,
        });
        expect(event.event.value.cursor > replay.cursor).toBe(true);
      } finally {
        stream.close();
      }
    });
  }

  it("a client that reconnects with its last cursor misses nothing, even what commits while it reconnects", async () => {
    const patient = await signUpPatient(t);
    const client = notificationClient(t, patient.interceptor, "grpc");
    const first = new StreamReader(client, { parent: patient.patient });
    const { cursor: start } = await first.untilCaughtUp();
    const before = [draftFor(patient.patientId), draftFor(patient.patientId)];
    for (const draft of before) await t.app.notifier.notify([draft]);
    const seen = await first.notifications(2);
    expect(seen.map((n) => n.title)).toEqual(before.map((d) => d.title));
    expect(seen[0]?.cursor).not.toBe(start);
    first.close();

    // Offline: three commit. Then the client reconnects while three more commit concurrently.
    const offline = [1, 2, 3].map(() => draftFor(patient.patientId));
    for (const draft of offline) await t.app.notifier.notify([draft]);
    const racing = [1, 2, 3].map(() => draftFor(patient.patientId));
    const second = new StreamReader(client, { parent: patient.patient, cursor: seen[1]?.cursor });
    await Promise.all(racing.map((draft) => t.app.notifier.notify([draft])));
    try {
      const received = (await second.notifications(6)).map((n) => n.title);
      // Everything after the cursor, each once: the offline ones in commit order, then the racing ones.
      expect(received.slice(0, 3)).toEqual(offline.map((d) => d.title));
      expect(new Set(received.slice(3))).toEqual(new Set(racing.map((d) => d.title)));
      // Nothing more is owed: the next event is a heartbeat, after the caught_up marker
      // when all the racing ones committed before the replay read them.
      let next = await second.next(2000);
      if (next.event.case === "caughtUp") next = await second.next(2000);
      expect(next.event.case).toBe("heartbeat");
    } finally {
      second.close();
    }
  });

  it("heartbeats keep an idle stream open and carry the cursor to resume from", async () => {
    const patient = await signUpPatient(t);
    await t.app.notifier.notify([draftFor(patient.patientId)]);
    const stream = new StreamReader(notificationClient(t, patient.interceptor, "grpc-web"), {
      parent: patient.patient,
    });
    try {
      const { titles, cursor } = await stream.untilCaughtUp();
      expect(titles).toEqual([]); // no cursor: only new ones
      const beats = [await stream.next(2000), await stream.next(2000)];
      for (const beat of beats) {
        expect(beat.event.case).toBe("heartbeat");
        if (beat.event.case === "heartbeat") {
          expect(beat.event.value.cursor).toBe(cursor);
          expect(beat.event.value.sendTime).toBeDefined();
        }
      }
    } finally {
      stream.close();
    }
  });

  it("only the categories asked for are streamed", async () => {
    const patient = await signUpPatient(t);
    const stream = new StreamReader(notificationClient(t, patient.interceptor), {
      parent: patient.patient,
      categories: [NotificationCategory.BILLING],
    });
    try {
      await stream.untilCaughtUp();
      const billing = draftFor(patient.patientId, { category: NotificationCategory.BILLING });
      await t.app.notifier.notify([draftFor(patient.patientId), billing]);
      expect(await stream.titles(1)).toEqual([billing.title]);
    } finally {
      stream.close();
    }
  });
});

describe("WatchNotifications access", () => {
  it("another patient's stream answers NOT_FOUND; an admin may watch", async () => {
    const [owner, other, admin] = await Promise.all([signUpPatient(t), signUpPatient(t), staffSession(t, "admin")]);
    const refused = new StreamReader(notificationClient(t, other.interceptor), { parent: owner.patient });
    await expect(refused.next()).rejects.toMatchObject({ code: Code.NotFound });
    const watched = new StreamReader(notificationClient(t, admin.interceptor), { parent: owner.patient });
    try {
      await watched.untilCaughtUp();
    } finally {
      watched.close();
    }
  });

  it("a revoked session ends an open stream with UNAUTHENTICATED at the next access check", async () => {
    const patient = await signUpPatient(t);
    const stream = new StreamReader(notificationClient(t, patient.interceptor, "grpc"), { parent: patient.patient });
    await stream.untilCaughtUp();
    expect((await stream.next(2000)).event.case).toBe("heartbeat");
    await authClient(t, patient.accessToken).logOut({ refreshToken: patient.refreshToken });
    const ended = await drainUntilError(stream);
    expect(ended.code).toBe(Code.Unauthenticated);
  });

  it("a cursor this stream never issued is INVALID_ARGUMENT", async () => {
    const patient = await signUpPatient(t);
    for (const cursor of ["garbage", "n1.zzzz"]) {
      const stream = new StreamReader(notificationClient(t, patient.interceptor), { parent: patient.patient, cursor });
      await expect(stream.next()).rejects.toMatchObject({ code: Code.InvalidArgument });
    }
  });

  it("limits concurrent streams per patient with RESOURCE_EXHAUSTED", async () => {
    const patient = await signUpPatient(t);
    const open = [1, 2].map(
      () => new StreamReader(notificationClient(t, patient.interceptor), { parent: patient.patient }),
    );
    try {
      for (const stream of open) await stream.untilCaughtUp();
      const third = new StreamReader(notificationClient(t, patient.interceptor), { parent: patient.patient });
      await expect(third.next()).rejects.toMatchObject({ code: Code.ResourceExhausted });
    } finally {
      for (const stream of open) stream.close();
    }
    // A closed stream frees its place.
    const again = new StreamReader(notificationClient(t, patient.interceptor), { parent: patient.patient });
    try {
      await expect(againCaughtUp(again)).resolves.toBe(true);
    } finally {
      again.close();
    }
  });
});

async function againCaughtUp(stream: StreamReader): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await stream.untilCaughtUp();
      return true;
    } catch (error) {
      // The server notices the closed streams asynchronously.
      if (attempt > 20 || ConnectError.from(error).code !== Code.ResourceExhausted) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function drainUntilError(stream: StreamReader): Promise<ConnectError> {
  for (;;) {
    try {
      await stream.next(3000);
    } catch (error) {
      return ConnectError.from(error);
    }
  }
}
