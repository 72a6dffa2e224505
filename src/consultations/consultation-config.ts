import type { EnvReader } from "../config/env-readers.ts";

/** Settings of the consultations context (documented in .env.example and the README). */
export type ConsultationConfig = {
  /** CONSULTATION_CHANGE_CUTOFF_SECONDS: a patient cancels or reschedules until this long before the start. */
  readonly changeCutoffSeconds: number;
  /** CONSULTATION_JOIN_OPENS_BEFORE_SECONDS: join details are handed out from this long before the start. */
  readonly joinOpensBeforeSeconds: number;
  /** CONSULTATION_HOLD_TTL_SECONDS: how long a slot is held at the Doctor Service while a booking commits. */
  readonly holdTtlSeconds: number;
  /** CONSULTATION_STATUS_CACHE_TTL_SECONDS: lifetime of a cached consultation (and of an invalidation marker). */
  readonly statusCacheTtlSeconds: number;
  /** CONSULTATION_REMINDER_SCAN_INTERVAL_MS: how often due reminders are looked for (0: never, for tests). */
  readonly reminderScanIntervalMs: number;
  /** CONSULTATION_REMINDER_HORIZON_SECONDS: the largest reminder offset honoured. */
  readonly reminderHorizonSeconds: number;
  /** CONSULTATION_FEEDBACK_EDIT_WINDOW_SECONDS: how long after giving it a patient may edit their feedback. */
  readonly feedbackEditWindowSeconds: number;
};

/** Reads the consultations settings; problems are recorded on `read`. */
export function readConsultationConfig(read: EnvReader): ConsultationConfig {
  const day = 86_400;
  return {
    changeCutoffSeconds: read.integer("CONSULTATION_CHANGE_CUTOFF_SECONDS", 3600, 0, 7 * day),
    joinOpensBeforeSeconds: read.integer("CONSULTATION_JOIN_OPENS_BEFORE_SECONDS", 900, 0, day),
    holdTtlSeconds: read.integer("CONSULTATION_HOLD_TTL_SECONDS", 60, 5, 600),
    statusCacheTtlSeconds: read.integer("CONSULTATION_STATUS_CACHE_TTL_SECONDS", 300, 1, day),
    reminderScanIntervalMs: read.integer("CONSULTATION_REMINDER_SCAN_INTERVAL_MS", 30_000, 0, 3_600_000),
    reminderHorizonSeconds: read.integer("CONSULTATION_REMINDER_HORIZON_SECONDS", 2 * day, 60, 30 * day),
    feedbackEditWindowSeconds: read.integer("CONSULTATION_FEEDBACK_EDIT_WINDOW_SECONDS", 3 * day, 0, 365 * day),
  };
}
