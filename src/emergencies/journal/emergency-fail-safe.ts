import type { EntityManager } from "@mikro-orm/postgresql";
import type { AuditEntryDraft } from "../../audit/audit-entry.ts";
import { isDatabaseUnavailable } from "../../db/database-errors.ts";
import type { Logger } from "../../observability/logger.ts";
import type { Clock } from "../../shared/clock.ts";
import { uuidV7 } from "../../shared/uuid-v7.ts";
import { backoffMs } from "../emergency.ts";
import type { EmergencyRecord, EmergencyView } from "../emergency-record.ts";
import type { EmergencySql } from "../emergency-store.ts";
import type { EmergencyLane } from "../lane/emergency-lane.ts";
import { msgIds } from "../lane-messages.ts";
import { relayActor, relayAudit } from "../outbox-relay.ts";
import type { EmergencyJournal, PendingEmergency } from "./emergency-journal.ts";
import type { JournalledEmergency } from "./journal-record.ts";
import type { RecentAnswer, RecentRequests } from "./recent-requests.ts";

/** What the fail-safe needs. */
export interface FailSafeDeps {
  readonly journal: EmergencyJournal;
  /** Answers to recent request ids, for retries during an outage. */
  readonly recent: RecentRequests;
  /** The emergencies' own ORM. */
  readonly em: () => EntityManager;
  /** The SQL of the emergencies tables, sealing and opening their health data. */
  readonly sql: EmergencySql;
  readonly lane: EmergencyLane;
  readonly clock: Clock;
  readonly audit: { recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void> };
  readonly logger: Logger;
  /** After a replay committed a row: wake watchers and the outbox relay. */
  readonly committed: (emergencyId: string) => void;
  readonly settings: {
    /** EMERGENCY_JOURNAL_REPLAY_INTERVAL_MS: how often pending entries are published and replayed. */
    readonly replayIntervalMs: number;
    /** After a database failure, creates go straight to the journal for this long before trying it again. */
    readonly probeAfterMs: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
  };
}

/**
 * CreateEmergency without PostgreSQL (functional safety 1). `accept` puts an emergency
 * into the fsynced journal and answers; in the background its dispatch message goes to
 * JetStream with `Nats-Msg-Id` = its id (retried with backoff while NATS is down too),
 * and every `replayIntervalMs` the pending entries are replayed into PostgreSQL: the
 * row, its request id, its timeline, its outbox row (already sent when the journal
 * path got the PubAck, so the relay does not publish it again), and the call's audit
 * entry, in one transaction that does nothing when the row is already there. So a
 * replay interrupted by a crash, or the same id committed by an attempt whose answer
 * was lost, still ends in exactly one row.
 */
export class EmergencyFailSafe {
  readonly #deps: FailSafeDeps;
  readonly #publishing = new Map<string, Promise<void>>();
  readonly #publishAttempts = new Map<string, { attempts: number; dueAt: number }>();
  readonly #replaying = new Map<string, Promise<boolean>>();
  #lastFailureAt = 0;
  #lastSuccessAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | undefined;
  #stopped = true;

  constructor(deps: FailSafeDeps) {
    this.#deps = deps;
  }

  /** True right after PostgreSQL failed: creates skip the attempt and go to the journal. */
  get databaseDown(): boolean {
    return (
      this.#lastFailureAt > this.#lastSuccessAt && Date.now() - this.#lastFailureAt < this.#deps.settings.probeAfterMs
    );
  }

  /** Records that PostgreSQL failed (an unavailable error) or answered. */
  databaseFailed(): void {
    this.#lastFailureAt = Date.now();
  }

  databaseAnswered(): void {
    this.#lastSuccessAt = Date.now();
  }

  /** What a request id committed to PostgreSQL was answered with, when this process knows it. */
  recentAnswer(patientId: string, requestId: string): RecentAnswer | undefined {
    return this.#deps.recent.get(patientId, requestId);
  }

  /** Remembers the answer to a request id committed to PostgreSQL. */
  rememberAnswer(patientId: string, requestId: string, answer: RecentAnswer): void {
    this.#deps.recent.remember(patientId, requestId, answer);
  }

  /** The pending emergency of a patient's request id. */
  pendingRequest(patientId: string, requestId: string): PendingEmergency | undefined {
    return this.#deps.journal.byRequest(patientId, requestId);
  }

  /** How a pending emergency looks to its patient (DISPATCH_PENDING until replayed, even once published). */
  pendingView(emergencyId: string): EmergencyView | undefined {
    const pending = this.#deps.journal.get(emergencyId);
    return pending === undefined ? undefined : viewOf(pending.emergency);
  }

  /** Journals an accepted emergency (durable when this resolves) and publishes it in the background. */
  async accept(emergency: JournalledEmergency): Promise<EmergencyView> {
    await this.#deps.journal.append({ t: "accepted", emergency });
    this.#deps.logger.warn({ emergencyId: emergency.id }, "emergency accepted into the local journal (database down)");
    void this.#publish(emergency.id);
    return viewOf(emergency);
  }

  start(): void {
    this.#stopped = false;
    this.kick();
  }

  /** Runs a pass now (PostgreSQL may be back). */
  kick(): void {
    if (this.#stopped || this.#tick !== undefined) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#tick = this.#pass()
      .catch((error: unknown) =>
        this.#deps.logger.warn({ err: { type: (error as Error).name } }, "emergency journal pass failed"),
      )
      .finally(() => {
        this.#tick = undefined;
        if (!this.#stopped) this.#timer = setTimeout(() => this.kick(), this.#deps.settings.replayIntervalMs);
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#tick;
    await Promise.allSettled([...this.#publishing.values(), ...this.#replaying.values()]);
  }

  /**
   * Replays one pending emergency now; true when its row is in PostgreSQL (or it was
   * not pending). Throws the database's error when it is still unreachable.
   */
  replay(emergencyId: string): Promise<boolean> {
    const running = this.#replaying.get(emergencyId);
    if (running !== undefined) return running;
    const pending = this.#deps.journal.get(emergencyId);
    if (pending === undefined) return Promise.resolve(true);
    const replay = this.#replayOne(pending).finally(() => this.#replaying.delete(emergencyId));
    this.#replaying.set(emergencyId, replay);
    return replay;
  }

  async #pass(): Promise<void> {
    const pending = this.#deps.journal.pending();
    if (pending.length === 0) return;
    const now = Date.now();
    for (const entry of pending) {
      const due = this.#publishAttempts.get(entry.emergency.id)?.dueAt ?? 0;
      if (entry.publishedAt === undefined && due <= now) void this.#publish(entry.emergency.id);
    }
    for (const entry of pending) {
      try {
        await this.replay(entry.emergency.id);
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        return; // still down: the next pass tries again
      }
    }
  }

  #publish(emergencyId: string): Promise<void> {
    const running = this.#publishing.get(emergencyId);
    if (running !== undefined) return running;
    const publish = this.#publishOnce(emergencyId).finally(() => this.#publishing.delete(emergencyId));
    this.#publishing.set(emergencyId, publish);
    return publish;
  }

  async #publishOnce(emergencyId: string): Promise<void> {
    const pending = this.#deps.journal.get(emergencyId);
    if (pending === undefined || pending.publishedAt !== undefined) return;
    const { emergency } = pending;
    try {
      await this.#deps.lane.publish(
        "requested",
        emergency.priority,
        msgIds.requested(emergency.id),
        Buffer.from(emergency.payload, "base64"),
      );
    } catch {
      const attempts = (this.#publishAttempts.get(emergencyId)?.attempts ?? 0) + 1;
      const { retryBaseMs, retryMaxMs } = this.#deps.settings;
      this.#publishAttempts.set(emergencyId, {
        attempts,
        dueAt: Date.now() + backoffMs(attempts, retryBaseMs, retryMaxMs),
      });
      return;
    }
    this.#publishAttempts.delete(emergencyId);
    // Not waited for by anyone: if it is lost, the replayed outbox row is unsent and JetStream drops the republish.
    await this.#deps.journal
      .append({ t: "published", id: emergencyId, at: this.#deps.clock.now().toISOString() })
      .catch(() => undefined);
  }

  async #replayOne(pending: PendingEmergency): Promise<boolean> {
    // A publish in flight decides whether the row is written as sent: wait for it.
    await this.#publishing.get(pending.emergency.id);
    const current = this.#deps.journal.get(pending.emergency.id) ?? pending;
    const { emergency } = current;
    const publishedAt = current.publishedAt;
    try {
      await this.#deps.em().transactional(async (tx) => {
        await this.#deps.sql.lockPatient(tx, emergency.patientId);
        if ((await this.#deps.sql.get(tx, emergency.id)) !== undefined) return; // replayed, or committed before the failure
        const seen = await this.#deps.sql.findRequest(tx, emergency.patientId, emergency.requestId);
        const record = recordOf(emergency, publishedAt);
        await this.#deps.sql.insert(tx, record);
        if (seen === undefined) {
          await this.#deps.sql.insertRequest(
            tx,
            emergency.patientId,
            emergency.requestId,
            emergency.id,
            false,
            record.createdAt,
          );
        } else {
          this.#deps.logger.warn(
            { emergencyId: emergency.id, other: seen.emergencyId },
            "a journalled emergency's request id already belongs to another emergency; kept as its own",
          );
        }
        const timeline = viewOf(emergency, publishedAt).timeline;
        for (const entry of timeline) await this.#deps.sql.insertEvent(tx, emergency.id, entry, entry.eventTime);
        await this.#deps.sql.insertOutbox(
          tx,
          {
            id: uuidV7(record.createdAt.getTime()),
            emergencyId: emergency.id,
            topic: "requested",
            priority: emergency.priority,
            msgId: msgIds.requested(emergency.id),
            payload: Buffer.from(emergency.payload, "base64"),
          },
          record.createdAt,
          publishedAt,
        );
        const audits: AuditEntryDraft[] = [emergency.audit];
        if (publishedAt !== undefined) {
          audits.push(relayAudit(emergency.patientId, emergency.id, msgIds.requested(emergency.id)));
        }
        await this.#deps.audit.recordWithin(tx, audits); // last: it holds the audit chain's head lock
      });
    } catch (error) {
      if (isDatabaseUnavailable(error)) this.databaseFailed();
      throw error;
    }
    this.databaseAnswered();
    // A retry during a later outage finds it here once it is no longer pending.
    this.#deps.recent.remember(emergency.patientId, emergency.requestId, {
      view: viewOf(emergency, publishedAt),
      merged: false,
    });
    await this.#deps.journal.append({ t: "replayed", id: emergency.id });
    this.#deps.committed(emergency.id);
    return true;
  }
}

/** The row a journalled emergency becomes; REQUESTED already when JetStream acknowledged it. */
function recordOf(emergency: JournalledEmergency, publishedAt: Date | undefined): EmergencyRecord {
  const createdAt = new Date(emergency.createdAt);
  const published = publishedAt !== undefined;
  return {
    id: emergency.id,
    patientId: emergency.patientId,
    kind: emergency.kind,
    severity: emergency.severity,
    priority: emergency.priority,
    description: emergency.description,
    location: emergency.location,
    callbackPhone: emergency.callbackPhone,
    state: published ? "requested" : "dispatch_pending",
    lastSourceSequence: 0,
    timelineLength: published ? 2 : 1,
    assignment: null,
    requestedBy: emergency.requestedBy,
    requestedByRole: emergency.requestedByRole,
    mergedRequestCount: 0,
    cancelledBy: null,
    cancelledByRole: null,
    cancelReason: null,
    version: 1,
    createdAt,
    updatedAt: publishedAt ?? createdAt,
    endedAt: null,
    dispatchedAt: publishedAt ?? null,
  };
}

function viewOf(emergency: JournalledEmergency, publishedAt?: Date): EmergencyView {
  const record = recordOf(emergency, publishedAt);
  const timeline: EmergencyView["timeline"] = [
    {
      position: 1,
      state: "dispatch_pending",
      sourceSequence: null,
      eventTime: record.createdAt,
      actor: emergency.requestedBy,
      actorRole: emergency.requestedByRole,
      note: "",
    },
    ...(publishedAt === undefined
      ? []
      : [
          {
            position: 2,
            state: "requested" as const,
            sourceSequence: null,
            eventTime: publishedAt,
            actor: relayActor,
            actorRole: "service",
            note: "",
          },
        ]),
  ];
  return { emergency: record, timeline };
}
