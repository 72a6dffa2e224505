import type { EntityManager } from "@mikro-orm/postgresql";
import { resolve } from "node:path";
import type { AuditEntryDraft } from "../../audit/audit-entry.ts";
import type { Logger } from "../../observability/logger.ts";
import type { Clock } from "../../shared/clock.ts";
import type { EmergencyConfig } from "../emergency-config.ts";
import { type EmergencyLane, keyOfMsgId, type LaneHandler } from "../lane/emergency-lane.ts";
import { EmergencyFailSafe } from "./emergency-fail-safe.ts";
import { EmergencyJournal } from "./emergency-journal.ts";
import type { JournalCodec } from "./journal-record.ts";
import { RecentRequests } from "./recent-requests.ts";
import type { EmergencySql } from "../emergency-store.ts";

/** How long, and how many, answers to request ids are kept for retries during an outage. */
const recentWindowMs = 15 * 60_000;
const recentMax = 5_000;

/** The running fail-safe. */
export interface RunningFailSafe {
  readonly failSafe: EmergencyFailSafe;
  /** Status events of an emergency still in the journal wait for its replay (else they would find no row). */
  afterReplay(handler: LaneHandler): LaneHandler;
  close(): Promise<void>;
}

/** What it is built from. */
export interface FailSafeParts {
  readonly settings: EmergencyConfig;
  readonly dataDir: string;
  readonly codec: JournalCodec;
  readonly em: () => EntityManager;
  /** The SQL of the emergencies tables. */
  readonly sql: EmergencySql;
  readonly lane: EmergencyLane;
  readonly clock: Clock;
  readonly audit: { recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void> };
  readonly logger: Logger;
  readonly committed: (emergencyId: string) => void;
}

/**
 * Opens the journal (EMERGENCY_JOURNAL_DIR, default DATA_DIR/emergency-journal),
 * replays what an earlier process left in it, and keeps replaying; undefined when
 * EMERGENCY_JOURNAL_DIR=off.
 */
export async function startFailSafe(parts: FailSafeParts): Promise<RunningFailSafe | undefined> {
  const { settings } = parts;
  if (!settings.journalEnabled) return undefined;
  const dir = resolve(settings.journalDir ?? resolve(parts.dataDir, "emergency-journal"));
  const journal = await EmergencyJournal.open(dir, parts.codec, parts.logger);
  const recent = new RecentRequests({ windowMs: recentWindowMs, max: recentMax });
  // The answers an earlier process gave (it may have been killed before a client read one).
  await recent
    .load(parts.em(), parts.sql)
    .catch((error: unknown) =>
      parts.logger.warn({ err: { type: (error as Error).name } }, "recent emergency requests could not be loaded"),
    );
  const failSafe = new EmergencyFailSafe({
    journal,
    recent,
    em: parts.em,
    sql: parts.sql,
    lane: parts.lane,
    clock: parts.clock,
    audit: parts.audit,
    logger: parts.logger,
    committed: parts.committed,
    settings: {
      replayIntervalMs: settings.journalReplayIntervalMs,
      probeAfterMs: Math.max(settings.journalReplayIntervalMs, 500),
      retryBaseMs: settings.retryBaseMs,
      retryMaxMs: settings.retryMaxMs,
    },
  });
  failSafe.start();
  return {
    failSafe,
    afterReplay: (handler) => async (delivery) => {
      const emergencyId = keyOfMsgId(delivery.msgId);
      if (journal.get(emergencyId) !== undefined) await failSafe.replay(emergencyId);
      await handler(delivery);
    },
    async close() {
      await failSafe.stop();
      await journal.close();
    },
  };
}
