import { create, toBinary } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmergencyStatusChangedSchema } from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import { Assignment_State } from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import { Emergency_State } from "../../gen/telemed/patient/v1/emergency_pb.js";
import { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";
import { LaneNames } from "../../src/emergencies/lane/emergency-lane.ts";
import { notificationClient, StreamReader } from "../notifications/notification-fixtures.ts";
import { signUpPatient } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import {
  assignmentOf,
  EmergencyStream,
  emergencyClient,
  emergencyRequest,
  eventually,
  freeUnits,
  paramedicOf,
  stateName,
} from "./emergency-fixtures.ts";

const prefix = `t${Math.random().toString(16).slice(2, 12)}`;
let t: TestApp;
let nc: NatsConnection;

beforeAll(async () => {
  t = await startTestApp({ EMERGENCY_LANE_PREFIX: prefix, EMERGENCY_HEARTBEAT_INTERVAL_MS: "500" });
  nc = await connect({ servers: process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222" });
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await t?.close();
});

describe("TST-PT005-2 a patient tracks the status of their emergency in real time", () => {
  for (const protocol of ["connect", "grpc"] as const) {
    it(`over ${protocol}: a snapshot first, one update per status change as the crew reports it, then the end`, {
      timeout: 20_000,
    }, async () => {
      freeUnits(t);
      const patient = await signUpPatient(t);
      const client = emergencyClient(t, patient.interceptor, protocol);
      const { emergency } = await client.createEmergency(emergencyRequest(patient.patient));
      const name = assignmentOf(emergency);
      // Dispatched as far as the Patient Service knows: the snapshot holds everything so far.
      await eventually(async () => {
        const read = await client.getEmergency({ name: emergency?.name ?? "" });
        return read.emergency?.state === Emergency_State.DISPATCHED ? true : undefined;
      });
      const stream = new EmergencyStream(client, { name: emergency?.name ?? "" });
      try {
        const first = await stream.next();
        expect(first !== "done" && first.event.case).toBe("snapshot");
        const received: string[] = [];
        for (const expected of ["EN_ROUTE", "ON_SCENE", "TRANSPORTING", "AT_HOSPITAL", "CLOSED"]) {
          const started = Date.now();
          paramedicOf(t).advance(name);
          const event = await stream.next(3000);
          if (event === "done" || event.event.case !== "update") throw new Error("expected an update");
          received.push(stateName(event.event.value.statusEvent?.state));
          expect(stateName(event.event.value.emergency?.state)).toBe(expected);
          expect(Date.now() - started).toBeLessThan(1500);
        }
        expect(received).toEqual(["EN_ROUTE", "ON_SCENE", "TRANSPORTING", "AT_HOSPITAL", "CLOSED"]);
        expect(await stream.next()).toBe("done");
        const { emergency: closed } = await client.getEmergency({ name: emergency?.name ?? "" });
        expect(closed?.assignment?.destinationHospital).not.toBe("");
        expect(closed?.endTime).toBeDefined();
      } finally {
        stream.close();
      }
    });
  }

  it("a stream resumed with after_sequence replays what the client missed after the snapshot", {
    timeout: 20_000,
  }, async () => {
    freeUnits(t);
    const patient = await signUpPatient(t);
    const client = emergencyClient(t, patient.interceptor);
    const { emergency } = await client.createEmergency(emergencyRequest(patient.patient));
    const name = assignmentOf(emergency);
    await eventually(() =>
      paramedicOf(t)
        .assignments()
        .find((a) => a.name === name)?.state === Assignment_State.DISPATCHED
        ? true
        : undefined,
    );
    paramedicOf(t).advance(name);
    const now = await eventually(async () => {
      const read = await client.getEmergency({ name: emergency?.name ?? "" });
      return read.emergency?.state === Emergency_State.EN_ROUTE ? read.emergency : undefined;
    });
    const stream = new EmergencyStream(client, { name: emergency?.name ?? "", afterSequence: 1n });
    try {
      expect((await stream.next()) !== "done").toBe(true);
      const replayed: bigint[] = [];
      for (let i = 1; i < now.timeline.length; i++) {
        const event = await stream.next();
        if (event !== "done" && event.event.case === "update")
          replayed.push(event.event.value.statusEvent?.sequence ?? 0n);
      }
      expect(replayed).toEqual(now.timeline.slice(1).map((e) => e.sequence));
    } finally {
      stream.close();
    }
  });
});

describe("TST-PT006-2 emergency notifications are sent to the patient instantly", () => {
  it("each status change arrives on the patient's notification stream as a CRITICAL emergency notification", {
    timeout: 20_000,
  }, async () => {
    freeUnits(t);
    const patient = await signUpPatient(t);
    const notifications = new StreamReader(notificationClient(t, patient.interceptor), { parent: patient.patient });
    try {
      await notifications.untilCaughtUp();
      const { emergency } = await emergencyClient(t, patient.interceptor).createEmergency(
        emergencyRequest(patient.patient),
      );
      const [dispatched] = await notifications.notifications(1, 5000);
      expect(dispatched).toMatchObject({
        category: NotificationCategory.EMERGENCIES,
        priority: NotificationPriority.CRITICAL,
        subjectResource: emergency?.name,
      });
      expect(dispatched?.title).toMatch(/dispatched/);
      paramedicOf(t).advance(assignmentOf(emergency));
      const started = Date.now();
      const [enRoute] = await notifications.notifications(1, 2000);
      expect(enRoute?.title).toMatch(/on the way/);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      notifications.close();
    }
  });
});

describe("status events are applied in order per emergency", () => {
  it("a duplicate or stale event changes nothing; a newer one applies", { timeout: 20_000 }, async () => {
    freeUnits(t);
    const patient = await signUpPatient(t);
    const client = emergencyClient(t, patient.interceptor);
    const { emergency } = await client.createEmergency(emergencyRequest(patient.patient));
    const name = assignmentOf(emergency);
    await eventually(() =>
      paramedicOf(t)
        .assignments()
        .find((a) => a.name === name)?.state === Assignment_State.DISPATCHED
        ? true
        : undefined,
    );
    paramedicOf(t).advance(name); // EN_ROUTE, sequence 3
    const enRoute = await eventually(async () => {
      const read = await client.getEmergency({ name: emergency?.name ?? "" });
      return read.emergency?.state === Emergency_State.EN_ROUTE ? read.emergency : undefined;
    });
    const js = jetstream(nc);
    const lane = new LaneNames(prefix);
    const id = emergency?.name.split("/").at(-1) ?? "";
    const event = (sequence: bigint, state: Emergency_State) =>
      toBinary(
        EmergencyStatusChangedSchema,
        create(EmergencyStatusChangedSchema, {
          emergency: emergency?.name,
          priority: 1,
          sequence,
          state,
          unit: "units/amb-01",
        }),
      );
    // Stale: an older sequence claiming a later state. Duplicate: the same sequence again under a new message id.
    await js.publish(lane.subject("status", 1), event(2n, Emergency_State.AT_HOSPITAL), { msgID: `${id}.stale` });
    await js.publish(lane.subject("status", 1), event(3n, Emergency_State.CLOSED), { msgID: `${id}.dup` });
    // A newer one, published after them on the same subject: once it applied, the two before were handled.
    await js.publish(lane.subject("status", 1), event(9n, Emergency_State.ON_SCENE), { msgID: `${id}.9` });
    const after = await eventually(async () => {
      const read = await client.getEmergency({ name: emergency?.name ?? "" });
      return read.emergency?.state === Emergency_State.ON_SCENE ? read.emergency : undefined;
    });
    expect(after.timeline.map((e) => stateName(e.state))).toEqual([
      ...enRoute.timeline.map((e) => stateName(e.state)),
      "ON_SCENE",
    ]);
    // The simulator's own next event (sequence 4) is now stale and ignored too.
    paramedicOf(t).advance(name);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const still = await client.getEmergency({ name: emergency?.name ?? "" });
    expect(still.emergency?.timeline).toHaveLength(after.timeline.length);
  });
});
