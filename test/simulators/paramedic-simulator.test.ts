import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
