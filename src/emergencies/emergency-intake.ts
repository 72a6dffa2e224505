import type { EntityManager } from "@mikro-orm/postgresql";
import type { Clock } from "../shared/clock.ts";
import { DomainError, etagMismatch, notFound } from "../shared/domain-errors.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import { type EmergencyKind, isCancellable, isEnded, mergesInto, priorityOf, type Severity } from "./emergency.ts";
import {
  type EmergencyRecord,
  type EmergencyView,
  emergencyName,
  etagOf,
  type StoredLocation,
} from "./emergency-record.ts";
import { emergencySql } from "./emergency-store.ts";
import { cancelledMessage, msgIds, requestedMessage } from "./lane-messages.ts";

/** Who acts: a principal's resource name and role (lower-case ActorRole name). */
export interface Actor {
  readonly name: string;
  readonly role: string;
}

/** A validated CreateEmergency. */
export interface NewEmergency {
  readonly patientId: string;
  readonly requestId: string;
  readonly kind: EmergencyKind;
  readonly severity: Severity;
  readonly description: string;
  readonly location: StoredLocation;
  readonly callbackPhone: string;
  readonly requestedBy: Actor;
}

/** Records the change's audit entry on `resource` inside its transaction (CallAudit.within). */
export type AuditWithin = (em: EntityManager, resource: string) => Promise<void>;

/** What the intake needs. */
export interface IntakeDeps {
  /** A fork of the emergencies' own ORM (its own connection pool). */
  readonly em: () => EntityManager;
  readonly clock: Clock;
  readonly mergeWindowSeconds: number;
  /** After a commit: wake watchers of the emergency and the outbox relay. */
  readonly committed: (emergencyId: string) => void;
}

/**
 * Raising and cancelling emergencies. Each is one transaction: the emergency row, its
 * timeline entry, the outbox row for the lane and the audit entry commit together, and
 * the answer never waits for NATS (the relay publishes after the commit).
 */
export class EmergencyIntake {
  readonly #deps: IntakeDeps;

  constructor(deps: IntakeDeps) {
    this.#deps = deps;
  }

  /**
   * Creates the emergency, or returns the one this request already made or was merged
   * into. Creates of one patient are serialised (an advisory lock), so three presses
   * on a bad network, in any order or all at once, make one emergency.
   */
  async create(input: NewEmergency, audit: AuditWithin): Promise<{ view: EmergencyView; merged: boolean }> {
    const result = await this.#deps.em().transactional(async (em) => {
      await emergencySql.lockPatient(em, input.patientId);
      const now = this.#deps.clock.now();
      const seen = await emergencySql.findRequest(em, input.patientId, input.requestId);
      if (seen !== undefined) {
        await audit(em, emergencyName(input.patientId, seen.emergencyId));
        return { id: seen.emergencyId, merged: seen.merged, changed: false };
      }
      const priority = priorityOf(input.severity);
      const open = await emergencySql.findOpenForUpdate(em, input.patientId);
      if (open !== undefined && mergesInto(open, priority, now, this.#deps.mergeWindowSeconds)) {
        await emergencySql.update(em, open.id, { mergedRequestCount: open.mergedRequestCount + 1, updatedAt: now });
        await emergencySql.insertRequest(em, input.patientId, input.requestId, open.id, true, now);
        await audit(em, emergencyName(input.patientId, open.id));
        return { id: open.id, merged: true, changed: true };
      }
      const record: EmergencyRecord = {
        id: uuidV7(now.getTime()),
        patientId: input.patientId,
        kind: input.kind,
        severity: input.severity,
        priority,
        description: input.description,
        location: input.location,
        callbackPhone: input.callbackPhone,
        state: "dispatch_pending",
        lastSourceSequence: 0,
        timelineLength: 1,
        assignment: null,
        requestedBy: input.requestedBy.name,
        requestedByRole: input.requestedBy.role,
        mergedRequestCount: 0,
        cancelledBy: null,
        cancelledByRole: null,
        cancelReason: null,
        version: 1,
        createdAt: now,
        updatedAt: now,
        endedAt: null,
        dispatchedAt: null,
      };
      await emergencySql.insert(em, record);
      await emergencySql.insertRequest(em, input.patientId, input.requestId, record.id, false, now);
      await emergencySql.insertEvent(
        em,
        record.id,
        {
          position: 1,
          state: "dispatch_pending",
          sourceSequence: null,
          eventTime: now,
          actor: input.requestedBy.name,
          actorRole: input.requestedBy.role,
          note: "",
        },
        now,
      );
      await emergencySql.insertOutbox(
        em,
        {
          id: uuidV7(now.getTime()),
          emergencyId: record.id,
          topic: "requested",
          priority,
          msgId: msgIds.requested(record.id),
          payload: requestedMessage(record, input.requestId),
        },
        now,
      );
      await audit(em, emergencyName(input.patientId, record.id)); // last: it holds the audit chain's head lock until commit
      return { id: record.id, merged: false, changed: true };
    });
    if (result.changed) this.#deps.committed(result.id);
    const view = await this.read(result.id);
    if (view === undefined) throw new Error("a committed emergency could not be read back");
    return { view, merged: result.merged };
  }

  /**
   * Cancels an emergency of `patientId` that is not yet on scene, and queues the
   * cancellation for the Paramedic Service. NOT_FOUND for another patient's emergency,
   * FAILED_PRECONDITION once it ended or a unit is on scene, ABORTED on a stale etag.
   */
  async cancel(
    patientId: string,
    emergencyId: string,
    by: Actor,
    reason: string,
    etag: string,
    requestId: string,
    audit: AuditWithin,
  ): Promise<EmergencyView> {
    await this.#deps.em().transactional(async (em) => {
      const record = await emergencySql.get(em, emergencyId, { forUpdate: true });
      if (record === undefined || record.patientId !== patientId) throw notFound("Emergency");
      if (etag !== "" && etag !== etagOf(record)) throw etagMismatch("Emergency");
      if (isEnded(record.state)) {
        throw new DomainError(
          "failed-precondition",
          "EMERGENCY_ENDED",
          "The emergency is already closed or cancelled.",
        );
      }
      if (!isCancellable(record.state)) {
        throw new DomainError(
          "failed-precondition",
          "EMERGENCY_ON_SCENE",
          "A unit is on scene: the crew closes the emergency.",
        );
      }
      const now = this.#deps.clock.now();
      const position = record.timelineLength + 1;
      await emergencySql.update(em, record.id, {
        state: "cancelled",
        timelineLength: position,
        cancelledBy: by.name,
        cancelledByRole: by.role,
        cancelReason: reason,
        endedAt: now,
        updatedAt: now,
      });
      await emergencySql.insertEvent(
        em,
        record.id,
        {
          position,
          state: "cancelled",
          sourceSequence: null,
          eventTime: now,
          actor: by.name,
          actorRole: by.role,
          note: "",
        },
        now,
      );
      await emergencySql.insertOutbox(
        em,
        {
          id: uuidV7(now.getTime()),
          emergencyId: record.id,
          topic: "cancelled",
          priority: record.priority,
          msgId: msgIds.cancelled(record.id),
          payload: cancelledMessage(record, now, requestId),
        },
        now,
      );
      await audit(em, emergencyName(patientId, emergencyId));
    });
    this.#deps.committed(emergencyId);
    const view = await this.read(emergencyId);
    if (view === undefined) throw notFound("Emergency");
    return view;
  }

  /** An emergency with its timeline; undefined when there is none. */
  async read(emergencyId: string): Promise<EmergencyView | undefined> {
    const em = this.#deps.em();
    const emergency = await emergencySql.get(em, emergencyId);
    if (emergency === undefined) return undefined;
    const timeline = await emergencySql.timeline(em, [emergencyId]);
    return { emergency, timeline: timeline.get(emergencyId) ?? [] };
  }

  /** A page of a patient's emergencies with their timelines, newest first. */
  async list(
    patientId: string,
    states: Parameters<typeof emergencySql.list>[2],
    beforeId: string | undefined,
    limit: number,
  ): Promise<EmergencyView[]> {
    const em = this.#deps.em();
    const records = await emergencySql.list(em, patientId, states, beforeId, limit);
    const timelines = await emergencySql.timeline(
      em,
      records.map((record) => record.id),
    );
    return records.map((emergency) => ({ emergency, timeline: timelines.get(emergency.id) ?? [] }));
  }
}
