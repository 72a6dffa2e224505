import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";
import { signUpPatient } from "../support/auth-fixtures.ts";
import { keysOf, startTestApp, type TestApp } from "../support/test-app.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { draftFor, eventually, notificationClient, StreamReader } from "./notification-fixtures.ts";

/**
 * Two replicas of the service: one database, one Redis prefix, the same keys, and the
 * real NATS on loopback (startTestApp sets NATS_URL). The periodic catch-up read is
 * set to a minute, so a notification that reaches the other replica's stream within
 * seconds got there through the NATS poke.
 */
let database: TestDatabase;
let a: TestApp;
let b: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  const redisKeyPrefix = `patient-test:${randomUUID()}:`;
  const env = {
    NOTIFICATION_CATCH_UP_INTERVAL_MS: "60000",
    NOTIFICATION_HEARTBEAT_INTERVAL_MS: "1000",
    NOTIFICATION_DISPATCH_INTERVAL_MS: "20",
  };
  a = await startTestApp(env, { database, redisKeyPrefix });
  b = await startTestApp({ ...env, ...keysOf(a) }, { database, redisKeyPrefix });
}, 60_000);
afterAll(async () => {
  await b?.close();
  await a?.close();
  await database?.drop();
});

describe("TST-PT006-1 fan-out across replicas", () => {
  it("a notification committed on one replica reaches the patient's stream on the other, over NATS", async () => {
    const patient = await signUpPatient(a);
    const onB = new StreamReader(notificationClient(b, patient.interceptor, "grpc"), { parent: patient.patient });
    try {
      await onB.untilCaughtUp();
      const drafts = [1, 2, 3].map(() => draftFor(patient.patientId));
      for (const draft of drafts) await a.app.notifier.notify([draft]);
      expect(await onB.titles(3, 3000)).toEqual(drafts.map((d) => d.title));
      // And the other way round, recorded inside a producer's own transaction.
      const fromB = draftFor(patient.patientId);
      const onA = new StreamReader(notificationClient(a, patient.interceptor, "grpc-web"), { parent: patient.patient });
      try {
        await onA.untilCaughtUp();
        await b.app.notifier.notify([fromB]);
        expect(await onA.titles(1, 3000)).toEqual([fromB.title]);
        expect(await onB.titles(1, 3000)).toEqual([fromB.title]);
      } finally {
        onA.close();
      }
    } finally {
      onB.close();
    }
  });

  it("delivers each channel once although both replicas dispatch, and a deduplicated draft is stored and sent once", async () => {
    const patient = await signUpPatient(a);
    const dedupeKey = `reminder:${randomUUID()}:PT15M`;
    const reminder = draftFor(patient.patientId, { priority: NotificationPriority.HIGH, dedupeKey });
    // Both replicas find the same reminder due at once.
    await Promise.all([a.app.notifier.notify([reminder]), b.app.notifier.notify([{ ...reminder }])]);
    const emergencies = [1, 2, 3, 4, 5].map(() =>
      draftFor(patient.patientId, {
        category: NotificationCategory.EMERGENCIES,
        priority: NotificationPriority.CRITICAL,
      }),
    );
    await Promise.all(emergencies.map((draft, i) => (i % 2 === 0 ? a : b).app.notifier.notify([draft])));
    const sentTo = (address: string) => [
      ...(a.app.siblings.simulators?.notification.messagesTo(address) ?? []),
      ...(b.app.siblings.simulators?.notification.messagesTo(address) ?? []),
    ];
    const client = notificationClient(a, patient.interceptor);
    // Every channel row reaches a final state...
    await eventually(async () => {
      const { notifications } = await client.listNotifications({ parent: patient.patient, pageSize: 100 });
      const open = notifications.flatMap((n) => n.deliveries).filter((d) => d.state === 1 || d.state === 2);
      return notifications.length === 6 && open.length === 0 ? true : undefined;
    });
    // ...and each was sent exactly once, by one replica or the other.
    const emails = sentTo(patient.email).map((m) => m.subject);
    expect(emails.filter((s) => s === reminder.title)).toHaveLength(1);
    for (const draft of emergencies) expect(emails.filter((s) => s === draft.title)).toHaveLength(1);
    const { notifications } = await client.listNotifications({ parent: patient.patient });
    expect(notifications.map((n) => n.title).sort()).toEqual([reminder, ...emergencies].map((d) => d.title).sort());
  });
});
