import type { EntityManager } from "@mikro-orm/postgresql";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import type { AuditEntryDraft } from "../audit/audit-entry.ts";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import { backoffMs, type Priority } from "./emergency.ts";
import { emergencyName } from "./emergency-record.ts";
import type { EmergencySql } from "./emergency-store.ts";
import type { EmergencyLane, LaneTopic } from "./lane/emergency-lane.ts";

/** What the relay needs. */
export interface RelayDeps {
  readonly em: () => EntityManager;
  /** The SQL of the emergencies tables. */
  readonly sql: EmergencySql;
  readonly lane: EmergencyLane;
  readonly clock: Clock;
  readonly audit: { recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void> };
  readonly logger: Logger;
  /** After a commit that moved emergencies on (DISPATCH_PENDING → REQUESTED). */
  readonly committed: (emergencyIds: readonly string[]) => void;
  readonly settings: { intervalMs: number; batch: number; retryBaseMs: number; retryMaxMs: number };
}

interface OutboxRow {
  readonly id: string;
  readonly emergency_id: string;
  readonly topic: LaneTopic;
  readonly priority: number;
  readonly msg_id: string;
  readonly payload: Buffer;
  readonly attempts: number;
}

/** The relay's actor in the audit log and timelines (also the journal's replay of a published emergency). */
export const relayActor = "services/patient-service";

/**
 * Publishes the emergency outbox to the lane. Every replica runs one: a round claims
 * due rows P1 first with `for update skip locked` (so replicas never publish the same
 * row at once), publishes them, and in the same transaction marks each sent only after
 * its PubAck, or schedules its retry with backoff when NATS is down. A crash between
 * the PubAck and the commit publishes the row again, which JetStream drops by its
 * Nats-Msg-Id. A cancellation is held back while its request is unsent, so the
 * Paramedic Service always sees the request first.
 */
export class OutboxRelay {
  readonly #deps: RelayDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;

  constructor(deps: RelayDeps) {
    this.#deps = deps;
  }

  start(): void {
    this.#stopped = false;
    this.kick();
  }

  /** Runs a round now (after a commit that queued something). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#running;
  }

  async #loop(): Promise<void> {
    let waitMs = this.#deps.settings.intervalMs;
    try {
      for (;;) {
        this.#again = false;
        const { published, claimed, failed } = await this.round();
        if (failed > 0) {
          waitMs = Math.min(this.#deps.settings.retryBaseMs, this.#deps.settings.intervalMs);
          break;
        }
        // A full batch, or something sent that may release a held-back cancellation: go again.
        if (this.#stopped || !(this.#again || claimed === this.#deps.settings.batch || published > 0)) break;
      }
    } catch (error) {
      this.#deps.logger.warn({ err: { type: (error as Error).name } }, "emergency outbox round failed; retrying");
      waitMs = this.#deps.settings.retryBaseMs;
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => this.kick(), this.#again ? 0 : waitMs);
    }
  }

  /** One round; exposed for tests. */
  async round(): Promise<{ claimed: number; published: number; failed: number }> {
    const { em, lane, clock, settings } = this.#deps;
    const moved: string[] = [];
    const outcome = await em().transactional(async (tx) => {
      const now = clock.now();
      const rows = await tx.execute<OutboxRow[]>(
        `select o."id", o."emergency_id", o."topic", o."priority", o."msg_id", o."payload", o."attempts" from "emergency_outbox" o ` +
          `where o."sent_at" is null and o."next_attempt_at" <= ? ` +
          `and not (o."topic" = 'cancelled' and exists (select 1 from "emergency_outbox" r where r."emergency_id" = o."emergency_id" and r."topic" = 'requested' and r."sent_at" is null)) ` +
          `order by o."priority", o."created_at" limit ? for update of o skip locked`,
        [now, settings.batch],
        "all",
      );
      if (rows.length === 0) return { claimed: 0, published: 0, failed: 0 };
      const results = await Promise.allSettled(
        rows.map((row) => lane.publish(row.topic, row.priority as Priority, row.msg_id, new Uint8Array(row.payload))),
      );
      const sentAt = clock.now();
      const audits: AuditEntryDraft[] = [];
      let failed = 0;
      for (const [index, row] of rows.entries()) {
        const result = results[index] as PromiseSettledResult<void>;
        if (result.status === "rejected") {
          failed += 1;
          const attempts = row.attempts + 1;
          const retryAt = new Date(sentAt.getTime() + backoffMs(attempts, settings.retryBaseMs, settings.retryMaxMs));
          const type = (result.reason as Error | undefined)?.name ?? "Error";
          await tx.execute(
            `update "emergency_outbox" set "attempts" = ?, "next_attempt_at" = ?, "last_error" = ? where "id" = ?`,
            [attempts, retryAt, type.slice(0, 64), row.id],
            "run",
          );
          continue;
        }
        await tx.execute(
          `update "emergency_outbox" set "sent_at" = ?, "attempts" = "attempts" + 1 where "id" = ?`,
          [sentAt, row.id],
          "run",
        );
        if (row.topic === "requested" && (await this.#markRequested(tx, row.emergency_id, sentAt))) {
          moved.push(row.emergency_id);
          audits.push(relayAudit(await patientOf(tx, row.emergency_id), row.emergency_id, row.msg_id));
        }
      }
      if (audits.length > 0) await this.#deps.audit.recordWithin(tx, audits);
      if (failed > 0) {
        this.#deps.logger.warn(
          { failed, claimed: rows.length },
          "emergency dispatch not acknowledged by NATS; will retry",
        );
      }
      return { claimed: rows.length, published: rows.length - failed, failed };
    });
    if (moved.length > 0) this.#deps.committed(moved);
    return outcome;
  }

  /** DISPATCH_PENDING → REQUESTED; not when a status event or a cancel got there first. */
  async #markRequested(tx: EntityManager, emergencyId: string, at: Date): Promise<boolean> {
    const record = await this.#deps.sql.get(tx, emergencyId, { forUpdate: true });
    if (record === undefined) return false;
    if (record.dispatchedAt === null) {
      const moves = record.state === "dispatch_pending";
      const position = record.timelineLength + 1;
      await this.#deps.sql.update(tx, emergencyId, {
        dispatchedAt: at,
        ...(moves ? { state: "requested", timelineLength: position, updatedAt: at } : {}),
      });
      if (moves) {
        await this.#deps.sql.insertEvent(
          tx,
          emergencyId,
          {
            position,
            state: "requested",
            sourceSequence: null,
            eventTime: at,
            actor: relayActor,
            actorRole: "service",
            note: "",
          },
          at,
        );
      }
      return moves;
    }
    return false;
  }
}

async function patientOf(tx: EntityManager, emergencyId: string): Promise<string> {
  const rows = await tx.execute<Array<{ patient_id: string }>>(
    `select "patient_id" from "emergencies" where "id" = ?`,
    [emergencyId],
    "all",
  );
  return (rows[0] as { patient_id: string }).patient_id;
}

/** The audit entry of DISPATCH_PENDING → REQUESTED. */
export function relayAudit(patientId: string, emergencyId: string, msgId: string): AuditEntryDraft {
  return {
    actor: relayActor,
    actorRole: ActorRole.SERVICE,
    subjectPatientId: patientId,
    proxy: false,
    action: AuditAction.UPDATE,
    resource: emergencyName(patientId, emergencyId),
    outcome: AuditOutcome.SUCCESS,
    rpc: "",
    requestId: msgId,
    clientAddress: "",
    reason: "",
  };
}
