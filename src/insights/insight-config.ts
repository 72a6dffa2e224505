import type { EnvReader } from "../config/env-readers.ts";

/** Settings of health insights (documented in .env.example and the README). */
export interface InsightConfig {
  /** INSIGHT_SCAN_INTERVAL_MS: how often every patient's insights are derived again (0: never; reads still derive). */
  readonly scanIntervalMs: number;
  /** INSIGHT_HORIZON_DAYS: how many days ahead a follow-up date or a prescription's last day raises an insight. */
  readonly horizonDays: number;
  /** INSIGHT_ABNORMAL_LOOKBACK_DAYS: how old an abnormal result may be and still raise an insight. */
  readonly abnormalLookbackDays: number;
}

/** Reads the insight settings; problems are recorded on `read`. */
export function readInsightConfig(read: EnvReader): InsightConfig {
  return Object.freeze({
    scanIntervalMs: read.integer("INSIGHT_SCAN_INTERVAL_MS", 3_600_000, 0, 86_400_000),
    horizonDays: read.integer("INSIGHT_HORIZON_DAYS", 7, 1, 90),
    abnormalLookbackDays: read.integer("INSIGHT_ABNORMAL_LOOKBACK_DAYS", 180, 1, 3650),
  });
}
