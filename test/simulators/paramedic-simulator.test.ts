import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EmergencyCancelledSchema,
  EmergencyRequestedSchema,
  EmergencyStatusChangedSchema,
} from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import { Emergency_State } from "../../gen/telemed/patient/v1/emergency_pb.js";
import { JetStreamLane } from "../../src/emergencies/lane/jetstream-lane.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startParamedicDispatch } from "../../src/simulators/paramedic-dispatch.ts";
import { createSimulators } from "../../src/simulators/start-simulators.ts";
import { Assignment_State, Unit_Capability, Unit_State } from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import type { Assignment } from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import { describeRefusal, refusal, type SimulatorHarness, startHarness } from "./simulator-fixtures.ts";

let h: SimulatorHarness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe("paramedic units and assignments", () => {
  it("reads units; an assignment is NOT_FOUND until its dispatch is received", async () => {
    const { unit } = await h.clients.paramedic.getUnit({ name: "units/amb-01" });
    expect(unit).toMatchObject({ callSign: "AMB-01", capability: Unit_Capability.ALS, state: Unit_State.AVAILABLE });
    const missing = await refusal(h.clients.paramedic.getAssignment({ name: "assignments/e-unknown" }));
    expect(describeRefusal(missing)).toMatchObject({ code: "NotFound", domain: "paramedic.telemed.example" });
  });

  it("assigns a P1 an advanced unit at once, publishes events with rising sequences, and ignores a redelivery", async () => {
    const events: Assignment[] = [];
    const unsubscribe = h.sims.paramedic.onChange((a) => events.push(a));
    const first = h.sims.paramedic.assign("patients/p1/emergencies/e-p1", 1);
    const again = h.sims.paramedic.assign("patients/p1/emergencies/e-p1", 1);
    unsubscribe();
    expect(first.state).toBe(Assignment_State.DISPATCHED);
    expect(again.lastSequence).toBe(first.lastSequence);
    expect(events.map((e) => [Assignment_State[e.state], e.lastSequence])).toEqual([
      ["QUEUED", 1n],
      ["DISPATCHED", 2n],
    ]);
    const { assignment } = await h.clients.paramedic.getAssignment({ name: "assignments/e-p1" });
    const { unit } = await h.clients.paramedic.getUnit({ name: assignment!.unit });
    expect(unit).toMatchObject({ capability: Unit_Capability.ALS, state: Unit_State.ASSIGNED });

    for (const state of ["EN_ROUTE", "ON_SCENE", "TRANSPORTING", "AT_HOSPITAL", "CLOSED"]) {
      expect(Assignment_State[h.sims.paramedic.advance("assignments/e-p1").state]).toBe(state);
    }
    expect((await h.clients.paramedic.getUnit({ name: assignment!.unit })).unit?.state).toBe(Unit_State.AVAILABLE);
    expect(h.sims.paramedic.assignment("assignments/e-p1").destinationHospital).not.toBe("");
  });

  it("when every unit is busy, waiting emergencies get the next free unit P1 before P2 before P3", async () => {
    for (const id of ["amb-01", "amb-02", "amb-03", "amb-04", "rr-01"])
      h.sims.paramedic.setUnitState(`units/${id}`, Unit_State.OUT_OF_SERVICE);
    h.sims.paramedic.assign("patients/p2/emergencies/e-q3", 3);
    h.sims.paramedic.assign("patients/p2/emergencies/e-q2", 2);
    h.sims.paramedic.assign("patients/p2/emergencies/e-q1", 1);
    const queued = await h.clients.paramedic.listAssignments({ states: [Assignment_State.QUEUED] });
    expect(queued.assignments).toHaveLength(3);

    h.sims.paramedic.setUnitState("units/amb-03", Unit_State.AVAILABLE);
    expect(h.sims.paramedic.assignment("assignments/e-q1").state).toBe(Assignment_State.DISPATCHED);
    expect(h.sims.paramedic.assignment("assignments/e-q2").state).toBe(Assignment_State.QUEUED);
    h.sims.paramedic.cancel("assignments/e-q1");
    expect(h.sims.paramedic.assignment("assignments/e-q2").state).toBe(Assignment_State.DISPATCHED);
    expect(h.sims.paramedic.assignment("assignments/e-q3").state).toBe(Assignment_State.QUEUED);

    const p3 = await h.clients.paramedic.listAssignments({ priority: 3 });
    expect(p3.assignments.map((a) => a.name)).toEqual(["assignments/e-q3"]);
    const page = await h.clients.paramedic.listAssignments({ pageSize: 2 });
    const rest = await h.clients.paramedic.listAssignments({ pageSize: 2, pageToken: page.nextPageToken });
    expect([...page.assignments, ...rest.assignments].map((a) => a.name).sort()).toEqual([
      "assignments/e-p1",
      "assignments/e-q1",
      "assignments/e-q2",
      "assignments/e-q3",
    ]);
  });
});

describe("the Paramedic Service's end of the JetStream emergency lane", () => {
  const natsUrl = process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222";
  const logger = createLogger("silent");
  const settings = (prefix: string, name: string) => ({
    url: natsUrl,
    name,
    prefix,
    publishTimeoutMs: 2000,
    replicas: 1,
    duplicateWindowSeconds: 120,
  });
  const request = (emergency: string, priority: number) =>
    toBinary(EmergencyRequestedSchema, create(EmergencyRequestedSchema, { emergency, priority }));

  it("takes a backlog P1 before P2 before P3 with a durable pull consumer, and a redelivery assigns nothing twice", async () => {
    const prefix = `t${randomBytes(5).toString("hex")}`;
    const patientSide = await JetStreamLane.open(settings(prefix, "test-patient-side"), logger);
    const paramedicSide = await JetStreamLane.open(settings(prefix, "test-paramedic-side"), logger);
    const sims = createSimulators({ seed: 3 });
    const statuses: string[] = [];
    const watcher = await patientSide.consume({
      durable: "watch_status",
      group: "status",
      workers: 1,
      retryDelayMs: () => 100,
      handler: async (delivery) => {
        const event = fromBinary(EmergencyStatusChangedSchema, delivery.data);
        statuses.push(`${event.emergency.split("/").at(-1)}:${Emergency_State[event.state]}:${event.sequence}`);
      },
    });
    try {
      // A backlog, least urgent first, before the Paramedic Service consumes.
      for (const [id, priority] of [
        ["e-3", 3],
        ["e-2", 2],
        ["e-1b", 1],
        ["e-1", 1],
      ] as const) {
        await patientSide.publish("requested", priority, id, request(`patients/p/emergencies/${id}`, priority));
      }
      // The same emergency again under another message id (a replay JetStream cannot dedupe).
      await patientSide.publish("requested", 1, "e-1.replay", request("patients/p/emergencies/e-1", 1));
      const dispatch = await startParamedicDispatch(sims.paramedic, paramedicSide, logger);
      try {
        await until(() => sims.paramedic.assignments().length === 4 && statuses.length >= 4);
        const received = sims.paramedic
          .assignments()
          .reverse()
          .map((a) => a.name);
        expect(received).toEqual(["assignments/e-1b", "assignments/e-1", "assignments/e-2", "assignments/e-3"]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        // Five units are free: each got exactly one DISPATCHED, the replay none.
        expect(statuses.filter((s) => s.startsWith("e-1:"))).toEqual(["e-1:DISPATCHED:2"]);
        expect(statuses).toHaveLength(4);

        // Cancellation travels the same priority subject, after the request.
        await patientSide.publish(
          "cancelled",
          2,
          "e-2.cancel",
          toBinary(
            EmergencyCancelledSchema,
            create(EmergencyCancelledSchema, { emergency: "patients/p/emergencies/e-2", priority: 2 }),
          ),
        );
        await until(() => sims.paramedic.assignment("assignments/e-2").state === Assignment_State.CANCELLED);
        await until(() => statuses.includes("e-2:CANCELLED:3"));
      } finally {
        await dispatch.stop();
      }
    } finally {
      await watcher.stop();
      await patientSide.deleteStream();
      await patientSide.close();
      await paramedicSide.close();
      sims.server.forceShutdown();
    }
  }, 20_000);
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
