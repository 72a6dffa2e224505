import { clone, create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Assignment,
  Assignment_State,
  AssignmentSchema,
  type Unit,
  Unit_Capability,
  Unit_State,
  UnitSchema,
} from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import type { DispatchDetails } from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import type { Clock } from "../shared/clock.ts";
import type { SeededRandom } from "./seeded-random.ts";
import { failedPrecondition, invalidField, notFound } from "./simulator-errors.ts";

/** Called with a copy of an assignment after each change: the status events the real service publishes. */
export type AssignmentListener = (assignment: Assignment) => void;

/** The order a dispatch moves through; CANCELLED can interrupt any state before CLOSED. */
const progress = [
  Assignment_State.QUEUED,
  Assignment_State.DISPATCHED,
  Assignment_State.EN_ROUTE,
  Assignment_State.ON_SCENE,
  Assignment_State.TRANSPORTING,
  Assignment_State.AT_HOSPITAL,
  Assignment_State.CLOSED,
];

/** Which capabilities serve a priority, best first: a P1 gets advanced life support when it can. */
const preference: Record<number, Unit_Capability[]> = {
  1: [Unit_Capability.ALS, Unit_Capability.RAPID_RESPONSE, Unit_Capability.BLS],
  2: [Unit_Capability.BLS, Unit_Capability.ALS],
  3: [Unit_Capability.BLS, Unit_Capability.ALS],
};

const emergencyPattern = /^patients\/[A-Za-z0-9_-]{1,64}\/emergencies\/([A-Za-z0-9_-]{1,64})$/;

/**
 * The Paramedic Service's units and assignments, in memory. Dispatch arrives over
 * NATS in the real system; here `assign` stands for the consumer (the emergencies
 * issue wires a JetStream consumer to it) and `onChange` for the status events.
 * Units are given to waiting emergencies by priority, P1 before P2 before P3.
 */
export class ParamedicSimulator {
  readonly #clock: Clock;
  readonly #random: SeededRandom;
  readonly #units = new Map<string, Unit>();
  readonly #assignments = new Map<string, Assignment>();
  /** What the crews were told (opened from the request's sealed details), by assignment name. */
  readonly #details = new Map<string, DispatchDetails>();
  readonly #listeners = new Set<AssignmentListener>();

  constructor(options: { clock: Clock; random: SeededRandom }) {
    this.#clock = options.clock;
    this.#random = options.random;
    const seenAt = timestampFromMs(this.#now());
    const units: Array<[string, string, Unit_Capability, Unit_State, number, number, string]> = [
      ["amb-01", "AMB-01", Unit_Capability.ALS, Unit_State.AVAILABLE, 12.9716, 77.5946, "Central"],
      ["amb-02", "AMB-02", Unit_Capability.ALS, Unit_State.AVAILABLE, 12.9352, 77.6245, "Koramangala"],
      ["amb-03", "AMB-03", Unit_Capability.BLS, Unit_State.AVAILABLE, 13.0358, 77.597, "Hebbal"],
      ["amb-04", "AMB-04", Unit_Capability.BLS, Unit_State.AVAILABLE, 12.9141, 77.6101, "BTM Layout"],
      ["rr-01", "RR-01", Unit_Capability.RAPID_RESPONSE, Unit_State.AVAILABLE, 12.9784, 77.6408, "Indiranagar"],
      ["amb-05", "AMB-05", Unit_Capability.BLS, Unit_State.OUT_OF_SERVICE, 12.9698, 77.75, "Whitefield"],
    ];
    for (const [id, callSign, capability, state, latitude, longitude, baseStation] of units) {
      const unit = create(UnitSchema, {
        name: `units/${id}`,
        callSign,
        capability,
        state,
        location: { latitude, longitude },
        locationTime: seenAt,
        baseStation,
      });
      this.#units.set(unit.name, unit);
    }
  }

  /** A unit by name; NOT_FOUND when there is none. */
  unit(name: string): Unit {
    const unit = this.#units.get(name);
    if (!unit) throw notFound("Unit", name);
    return clone(UnitSchema, unit);
  }

  /** An assignment by name, `assignments/{emergency id}`; NOT_FOUND until its dispatch was received. */
  assignment(name: string): Assignment {
    return clone(AssignmentSchema, this.#find(name));
  }

  /** The details a dispatch request carried (description, location, callback phone), when it carried any. */
  details(name: string): DispatchDetails | undefined {
    return this.#details.get(name);
  }

  /** Every assignment, newest first. */
  assignments(): Assignment[] {
    return [...this.#assignments.values()].reverse().map((a) => clone(AssignmentSchema, a));
  }

  /** Subscribes to assignment changes; returns the unsubscribe function. */
  onChange(listener: AssignmentListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Receives a dispatch for an emergency (`patients/{p}/emergencies/{e}`) with priority
   * 1..3. Idempotent: a redelivered dispatch returns the existing assignment and
   * publishes nothing. A free unit is assigned at once; otherwise the assignment waits QUEUED.
   */
  assign(emergency: string, priority: number, details?: DispatchDetails): Assignment {
    const match = emergencyPattern.exec(emergency);
    if (!match) throw invalidField("emergency", "must be patients/{patient}/emergencies/{emergency}");
    if (!Number.isInteger(priority) || priority < 1 || priority > 3)
      throw invalidField("priority", "must be 1, 2 or 3");
    const name = `assignments/${match[1]}`;
    const existing = this.#assignments.get(name);
    if (existing) return clone(AssignmentSchema, existing);
    if (details !== undefined) this.#details.set(name, details);
    const now = timestampFromMs(this.#now());
    const assignment = create(AssignmentSchema, {
      name,
      emergency,
      priority,
      state: Assignment_State.QUEUED,
      receiveTime: now,
      updateTime: now,
    });
    this.#assignments.set(name, assignment);
    this.#publish(assignment);
    this.#dispatchWaiting();
    return clone(AssignmentSchema, assignment);
  }

  /**
   * Moves an assignment on, to the next state or to `to` (forward only), as the crew
   * reports progress. TRANSPORTING records the destination; CLOSED frees the unit.
   */
  advance(name: string, to?: Assignment_State, details: { destinationHospital?: string } = {}): Assignment {
    const assignment = this.#find(name);
    const at = progress.indexOf(assignment.state);
    const target = to ?? progress[at + 1];
    if (at < 1 || target === undefined || progress.indexOf(target) <= at) {
      throw failedPrecondition(
        "INVALID_ASSIGNMENT_TRANSITION",
        `An assignment that is ${Assignment_State[assignment.state]} cannot move to ${target === undefined ? "a later state" : Assignment_State[target]}.`,
      );
    }
    if (target >= Assignment_State.TRANSPORTING && assignment.destinationHospital === "") {
      assignment.destinationHospital = details.destinationHospital ?? "City General Hospital";
    }
    this.#change(assignment, target);
    if (target === Assignment_State.CLOSED) this.#freeUnit(assignment);
    return clone(AssignmentSchema, assignment);
  }

  /** Cancels an assignment that is not CLOSED; cancelling a cancelled one returns it unchanged. */
  cancel(name: string): Assignment {
    const assignment = this.#find(name);
    if (assignment.state === Assignment_State.CLOSED) {
      throw failedPrecondition("ASSIGNMENT_CLOSED", "A closed assignment cannot be cancelled.");
    }
    if (assignment.state !== Assignment_State.CANCELLED) {
      this.#change(assignment, Assignment_State.CANCELLED);
      this.#freeUnit(assignment);
    }
    return clone(AssignmentSchema, assignment);
  }

  /** Test driver: puts a unit out of service (or back), for example to make dispatches queue. */
  setUnitState(name: string, state: Unit_State.AVAILABLE | Unit_State.OUT_OF_SERVICE): void {
    const unit = this.#units.get(name);
    if (!unit) throw notFound("Unit", name);
    if (unit.state === Unit_State.ASSIGNED) throw failedPrecondition("UNIT_ASSIGNED", "The unit is on an assignment.");
    unit.state = state;
    if (state === Unit_State.AVAILABLE) this.#dispatchWaiting();
  }

  /** Gives free units to QUEUED assignments: lowest priority number first, then oldest first. */
  #dispatchWaiting(): void {
    const waiting = [...this.#assignments.values()]
      .filter((a) => a.state === Assignment_State.QUEUED)
      .sort((a, b) => a.priority - b.priority); // stable: receive order within a priority
    for (const assignment of waiting) {
      const unit = this.#freeUnitFor(assignment.priority);
      if (!unit) continue;
      unit.state = Unit_State.ASSIGNED;
      assignment.unit = unit.name;
      assignment.etaTime = timestampFromMs(this.#now() + (4 + this.#random.int(12)) * 60_000);
      this.#change(assignment, Assignment_State.DISPATCHED);
    }
  }

  #freeUnitFor(priority: number): Unit | undefined {
    for (const capability of preference[priority] ?? []) {
      for (const unit of this.#units.values()) {
        if (unit.capability === capability && unit.state === Unit_State.AVAILABLE) return unit;
      }
    }
    return undefined;
  }

  #freeUnit(assignment: Assignment): void {
    const unit = this.#units.get(assignment.unit);
    if (unit?.state === Unit_State.ASSIGNED) unit.state = Unit_State.AVAILABLE;
    this.#dispatchWaiting();
  }

  #change(assignment: Assignment, state: Assignment_State): void {
    assignment.state = state;
    assignment.updateTime = timestampFromMs(this.#now());
    this.#publish(assignment);
  }

  /** Each change is one status event with the next sequence number. */
  #publish(assignment: Assignment): void {
    assignment.lastSequence += 1n;
    for (const listener of this.#listeners) listener(clone(AssignmentSchema, assignment));
  }

  #find(name: string): Assignment {
    const assignment = this.#assignments.get(name);
    if (!assignment) throw notFound("Assignment", name);
    return assignment;
  }

  #now(): number {
    return this.#clock.now().getTime();
  }
}
