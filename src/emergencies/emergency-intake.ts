import type { EntityManager } from "@mikro-orm/postgresql";
import type { AuditEntryDraft } from "../audit/audit-entry.ts";
import { isDatabaseUnavailable } from "../db/database-errors.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, etagMismatch, notFound } from "../shared/domain-errors.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import {
  type EmergencyKind,
  isCancellable,
  isEnded,
  mergesInto,
  type Priority,
  priorityOf,
  type Severity,
} from "./emergency.ts";
import {
  type EmergencyRecord,
  type EmergencyView,
  emergencyName,
  etagOf,
  type StoredLocation,
  type TimelineEntry,
} from "./emergency-record.ts";
import type { EmergencySql } from "./emergency-store.ts";
import type { DispatchSealer } from "./dispatch-details.ts";
import type { EmergencyFailSafe } from "./journal/emergency-fail-safe.ts";
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

/** The call's audit entry for the journal path: written at replay instead of inside a transaction. */
export interface JournalAudit {
  /** The entry as the call would record it on `resource`. */
  draft(resource: string): AuditEntryDraft;
  /** Tells the call pipeline the entry is taken care of (it is durable in the journal). */
  journalled(): void;
}

/** A committed request's dispatch message, as its outbox row holds it. */
export interface DispatchNow {
  readonly priority: Priority;
  readonly msgId: string;
  readonly payload: Uint8Array;
}

/** What the intake needs. */
export interface IntakeDeps {
  /** A fork of the emergencies' own ORM (its own connection pool). */
  readonly em: () => EntityManager;
  /** The SQL of the emergencies tables, sealing and opening their health data. */
  readonly sql: EmergencySql;
  /** Seals the dispatch details to the Paramedic Service's key; none: requests go without details. */
  readonly dispatch: DispatchSealer | undefined;
  readonly clock: Clock;
  readonly mergeWindowSeconds: number;
  /** After a commit: wake watchers of the emergency and the outbox relay. */
  readonly committed: (emergencyId: string) => void;
  /**
   * Publishes a new request's dispatch message as soon as it has committed, with the
   * payload in hand, before the answer; none: the relay alone publishes.
   */
  readonly publishNow?: (message: DispatchNow) => void;
  /** The journal for CreateEmergency while PostgreSQL is down (functional safety 1); none: no fallback. */
  readonly failSafe?: EmergencyFailSafe;
}

/**
 * Raising and cancelling emergencies. Each is one transaction: the emergency row, its
 * timeline entry, the outbox row for the lane and the audit entry commit together, and
 * the answer never waits for NATS (the request is published after the commit without
 * waiting for it, and the outbox relay makes sure it was).
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
   *
   * With the fail-safe (functional safety 1): when PostgreSQL is unreachable the
   * emergency goes into the local journal under the id made here, before the first
   * attempt, so an attempt whose commit got through anyway and its journal entry are
   * one emergency. A retry of a journalled request is replayed first, then answered as
   * usual; while the database stays down it gets the journalled emergency again.
   */
  async create(
    input: NewEmergency,
    audit: AuditWithin,
    journalAudit?: JournalAudit,
  ): Promise<{ view: EmergencyView; merged: boolean }> {
    const now = this.#deps.clock.now();
    const id = uuidV7(now.getTime());
    const failSafe = journalAudit === undefined ? undefined : this.#deps.failSafe;
    if (failSafe !== undefined && journalAudit !== undefined) {
      const pending = failSafe.pendingRequest(input.patientId, input.requestId);
      if (pending !== undefined) {
        const replayed = failSafe.databaseDown
          ? false
          : await failSafe.replay(pending.emergency.id).catch((error: unknown) => {
              if (!isDatabaseUnavailable(error)) throw error;
              return false;
            });
        const view = replayed ? undefined : failSafe.pendingView(pending.emergency.id);
        if (view !== undefined) {
          journalAudit.journalled();
          return { view, merged: false };
        }
      }
      if (failSafe.databaseDown) return this.#journal(failSafe, input, id, now, journalAudit);
    }
    try {
      const created = await this.#createInDatabase(input, audit, id, now);
      failSafe?.databaseAnswered();
      failSafe?.rememberAnswer(input.patientId, input.requestId, created);
      return created;
    } catch (error) {
      if (failSafe === undefined || journalAudit === undefined || !isDatabaseUnavailable(error)) throw error;
      failSafe.databaseFailed();
      return this.#journal(failSafe, input, id, now, journalAudit);
    }
  }

  async #createInDatabase(
    input: NewEmergency,
    audit: AuditWithin,
    id: string,
    now: Date,
  ): Promise<{ view: EmergencyView; merged: boolean }> {
    const record = newRecord(input, id, now);
    // Sealed before the transaction, so the patient's lock is not held through the key agreement.
    const payload = await requestedMessage(record, input.requestId, this.#deps.dispatch);
    const result = await this.#deps.em().transactional(async (em) => {
      await this.#deps.sql.lockPatient(em, input.patientId);
      const seen = await this.#deps.sql.findRequest(em, input.patientId, input.requestId);
      if (seen !== undefined) {
        await audit(em, emergencyName(input.patientId, seen.emergencyId));
        return { id: seen.emergencyId, merged: seen.merged, changed: false };
      }
      const open = await this.#deps.sql.findOpenForUpdate(em, input.patientId);
      if (open !== undefined && mergesInto(open, record.priority, now, this.#deps.mergeWindowSeconds)) {
        await this.#deps.sql.update(em, open.id, { mergedRequestCount: open.mergedRequestCount + 1, updatedAt: now });
        await this.#deps.sql.insertRequest(em, input.patientId, input.requestId, open.id, true, now);
        await audit(em, emergencyName(input.patientId, open.id));
        return { id: open.id, merged: true, changed: true };
      }
      await this.#deps.sql.insert(em, record);
      await this.#deps.sql.insertRequest(em, input.patientId, input.requestId, record.id, false, now);
      await this.#deps.sql.insertEvent(em, record.id, firstEntry(input, now), now);
      await this.#deps.sql.insertOutbox(
        em,
        {
          id: uuidV7(now.getTime()),
          emergencyId: record.id,
          topic: "requested",
          priority: record.priority,
          msgId: msgIds.requested(record.id),
          payload,
        },
        now,
      );
      await audit(em, emergencyName(input.patientId, record.id)); // last: it holds the audit chain's head lock until commit
      return { id: record.id, merged: false, changed: true };
    });
    if (result.id === record.id && !result.merged) {
      // Straight to the lane: under a flood of routine calls the relay's round (a
      // transaction, a claiming SELECT, then the publish) waits several turns of the busy
      // event loop. Its own publish of the outbox row follows and is dropped by the lane
      // as a duplicate (same Nats-Msg-Id); it still marks the row sent and records the
      // dispatch, and stays the path that retries when NATS is down.
      this.#deps.publishNow?.({ priority: record.priority, msgId: msgIds.requested(record.id), payload });
    }
    if (result.changed) this.#deps.committed(result.id);
    // A new emergency is answered from the rows it just wrote, as committed: reading it back
    // cost two more round trips, each waiting for a turn of the event loop, which a flood of
    // routine calls keeps busy. (The relay may have moved it on meanwhile; the answer is the
    // emergency as created, and GetEmergency and WatchEmergency show it as it goes.)
    if (result.id === record.id && !result.merged) {
      return { view: { emergency: record, timeline: [firstEntry(input, now)] }, merged: false };
    }
    const view = await this.read(result.id);
    if (view === undefined) throw new Error("a committed emergency could not be read back");
    return { view, merged: result.merged };
  }

  /** The journal path: durable on local disk when this resolves; the call's audit entry is written at replay. */
  async #journal(
    failSafe: EmergencyFailSafe,
    input: NewEmergency,
    id: string,
    now: Date,
    journalAudit: JournalAudit,
  ): Promise<{ view: EmergencyView; merged: boolean }> {
    // A retry of a request already committed (its answer lost): that emergency, as last seen.
    const answered = failSafe.recentAnswer(input.patientId, input.requestId);
    if (answered !== undefined) {
      journalAudit.journalled(); // a repeat during the outage: nothing changed, nothing to audit later
      return answered;
    }
    const record = newRecord(input, id, now);
    const view = await failSafe.accept({
      id,
      patientId: input.patientId,
      requestId: input.requestId,
      kind: input.kind,
      severity: input.severity,
      priority: record.priority,
      description: input.description,
      location: input.location,
      callbackPhone: input.callbackPhone,
      requestedBy: input.requestedBy.name,
      requestedByRole: input.requestedBy.role,
      createdAt: now.toISOString(),
      payload: Buffer.from(await requestedMessage(record, input.requestId, this.#deps.dispatch)).toString("base64"),
      audit: journalAudit.draft(emergencyName(input.patientId, id)),
    });
    journalAudit.journalled();
    return { view, merged: false };
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
    // Accepted into the journal while the database was down: its row first (or UNAVAILABLE while still down).
    if (this.#deps.failSafe?.pendingView(emergencyId) !== undefined) await this.#deps.failSafe.replay(emergencyId);
    await this.#deps.em().transactional(async (em) => {
      const record = await this.#deps.sql.get(em, emergencyId, { forUpdate: true });
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
      await this.#deps.sql.update(em, record.id, {
        state: "cancelled",
        timelineLength: position,
        cancelledBy: by.name,
        cancelledByRole: by.role,
        cancelReason: reason,
        endedAt: now,
        updatedAt: now,
      });
      await this.#deps.sql.insertEvent(
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
      await this.#deps.sql.insertOutbox(
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

  /** An emergency accepted into the journal and not yet in PostgreSQL, as its patient sees it. */
  pendingView(emergencyId: string): EmergencyView | undefined {
    return this.#deps.failSafe?.pendingView(emergencyId);
  }

  /** An emergency with its timeline; undefined when there is none. */
  async read(emergencyId: string): Promise<EmergencyView | undefined> {
    const em = this.#deps.em();
    const emergency = await this.#deps.sql.get(em, emergencyId);
    if (emergency === undefined) return undefined;
    const timeline = await this.#deps.sql.timeline(em, [emergencyId]);
    return { emergency, timeline: timeline.get(emergencyId) ?? [] };
  }

  /** A page of a patient's emergencies with their timelines, newest first. */
  async list(
    patientId: string,
    states: Parameters<EmergencySql["list"]>[2],
    beforeId: string | undefined,
    limit: number,
  ): Promise<EmergencyView[]> {
    const em = this.#deps.em();
    const records = await this.#deps.sql.list(em, patientId, states, beforeId, limit);
    const timelines = await this.#deps.sql.timeline(
      em,
      records.map((record) => record.id),
    );
    return records.map((emergency) => ({ emergency, timeline: timelines.get(emergency.id) ?? [] }));
  }
}

/** The row of a new emergency, DISPATCH_PENDING. */
function newRecord(input: NewEmergency, id: string, now: Date): EmergencyRecord {
  return {
    id,
    patientId: input.patientId,
    kind: input.kind,
    severity: input.severity,
    priority: priorityOf(input.severity),
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
}

/** Its first timeline entry. */
function firstEntry(input: NewEmergency, now: Date): TimelineEntry {
  return {
    position: 1,
    state: "dispatch_pending",
    sourceSequence: null,
    eventTime: now,
    actor: input.requestedBy.name,
    actorRole: input.requestedBy.role,
    note: "",
  };
}
