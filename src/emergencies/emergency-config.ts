import type { EnvReader } from "../config/env-readers.ts";

/** Settings of the emergencies context (documented in .env.example and the README). */
export interface EmergencyConfig {
  /**
   * EMERGENCY_LANE_PREFIX: prepended to the JetStream stream and durable consumer names
   * and to the lane's subjects, so several deployments (or test apps) share one NATS
   * without seeing each other's emergencies. Empty in production.
   */
  readonly lanePrefix: string;
  /** EMERGENCY_DB_POOL_MAX: the emergencies' own connection pool, apart from routine RPCs. */
  readonly dbPoolMax: number;
  /** EMERGENCY_MERGE_WINDOW_SECONDS: a repeat request within it is merged into the open emergency. */
  readonly mergeWindowSeconds: number;
  /** EMERGENCY_RELAY_INTERVAL_MS: how often the outbox is looked at without a wake-up. */
  readonly relayIntervalMs: number;
  /** EMERGENCY_RELAY_BATCH: outbox rows one relay round claims. */
  readonly relayBatch: number;
  /** EMERGENCY_RETRY_BASE_MS: first retry delay of a failed publish or event; doubles up to EMERGENCY_RETRY_MAX_MS. */
  readonly retryBaseMs: number;
  /** EMERGENCY_RETRY_MAX_MS: the longest pause between two retries. */
  readonly retryMaxMs: number;
  /** EMERGENCY_PUBLISH_TIMEOUT_MS: how long a JetStream publish waits for its PubAck. */
  readonly publishTimeoutMs: number;
  /** EMERGENCY_STREAM_REPLICAS: JetStream replicas of the stream (3 in production). */
  readonly streamReplicas: number;
  /** EMERGENCY_DUPLICATE_WINDOW_SECONDS: how long JetStream remembers a Nats-Msg-Id. */
  readonly duplicateWindowSeconds: number;
  /** EMERGENCY_WORKERS: status events applied at once (one per emergency at a time). */
  readonly workers: number;
  /** EMERGENCY_HEARTBEAT_INTERVAL_MS: heartbeat on an idle WatchEmergency stream, and the access re-check. */
  readonly heartbeatIntervalMs: number;
  /** EMERGENCY_CATCH_UP_INTERVAL_MS: a watch stream reads the database this often even without a poke. */
  readonly catchUpIntervalMs: number;
  /**
   * EMERGENCY_PRECEDENCE_ROUTINE_CALLS: while emergency work runs in this process, routine
   * calls start only while fewer than this many of them run (precedence-gate.ts); 0: never held.
   */
  readonly precedenceRoutineCalls: number;
  /** EMERGENCY_PRECEDENCE_GRACE_MS: how long routine calls stay held after the last emergency work ended. */
  readonly precedenceGraceMs: number;
  /**
   * EMERGENCY_JOURNAL_DIR: the local journal CreateEmergency falls back to while
   * PostgreSQL is down (functional safety 1); undefined: DATA_DIR/emergency-journal.
   * `off` disables the fallback (CreateEmergency then answers UNAVAILABLE like the rest).
   */
  readonly journalDir: string | undefined;
  readonly journalEnabled: boolean;
  /** EMERGENCY_JOURNAL_REPLAY_INTERVAL_MS: how often journalled emergencies are published and replayed. */
  readonly journalReplayIntervalMs: number;
  /**
   * PARAMEDIC_DISPATCH_KEY_FILE: the Paramedic Service's public key (EC P-256 or X25519,
   * a JWK or an SPKI PEM) that dispatch details are sealed to (dispatch-details.ts).
   * Unset: the embedded Paramedic simulator's key, or, with a real Paramedic Service,
   * requests go without details (logged loudly at start).
   */
  readonly dispatchKeyFile: string | undefined;
}

/** Reads the emergencies settings; problems are recorded on `read`. */
export function readEmergencyConfig(read: EnvReader): EmergencyConfig {
  const prefix = read.raw("EMERGENCY_LANE_PREFIX") ?? "";
  const journalDir = read.raw("EMERGENCY_JOURNAL_DIR");
  if (!/^[A-Za-z0-9_-]{0,32}$/.test(prefix))
    read.problem("EMERGENCY_LANE_PREFIX", "must be 0 to 32 of A-Z a-z 0-9 _ -");
  return {
    lanePrefix: /^[A-Za-z0-9_-]{0,32}$/.test(prefix) ? prefix : "",
    dbPoolMax: read.integer("EMERGENCY_DB_POOL_MAX", 4, 1, 100),
    mergeWindowSeconds: read.integer("EMERGENCY_MERGE_WINDOW_SECONDS", 600, 0, 86_400),
    relayIntervalMs: read.integer("EMERGENCY_RELAY_INTERVAL_MS", 1_000, 10, 60_000),
    relayBatch: read.integer("EMERGENCY_RELAY_BATCH", 50, 1, 1_000),
    retryBaseMs: read.integer("EMERGENCY_RETRY_BASE_MS", 250, 10, 60_000),
    retryMaxMs: read.integer("EMERGENCY_RETRY_MAX_MS", 10_000, 10, 600_000),
    publishTimeoutMs: read.integer("EMERGENCY_PUBLISH_TIMEOUT_MS", 2_000, 100, 60_000),
    streamReplicas: read.integer("EMERGENCY_STREAM_REPLICAS", 1, 1, 5),
    duplicateWindowSeconds: read.integer("EMERGENCY_DUPLICATE_WINDOW_SECONDS", 3_600, 60, 7 * 86_400),
    workers: read.integer("EMERGENCY_WORKERS", 4, 1, 64),
    heartbeatIntervalMs: read.integer("EMERGENCY_HEARTBEAT_INTERVAL_MS", 15_000, 100, 300_000),
    catchUpIntervalMs: read.integer("EMERGENCY_CATCH_UP_INTERVAL_MS", 5_000, 100, 600_000),
    precedenceRoutineCalls: read.integer("EMERGENCY_PRECEDENCE_ROUTINE_CALLS", 8, 0, 10_000),
    precedenceGraceMs: read.integer("EMERGENCY_PRECEDENCE_GRACE_MS", 50, 0, 10_000),
    journalDir: journalDir === "off" ? undefined : journalDir,
    journalEnabled: journalDir !== "off",
    journalReplayIntervalMs: read.integer("EMERGENCY_JOURNAL_REPLAY_INTERVAL_MS", 1_000, 50, 60_000),
    dispatchKeyFile: read.readableFile("PARAMEDIC_DISPATCH_KEY_FILE"),
  };
}
