import type { EnvReader } from "../config/env-readers.ts";

/** Settings of the notifications context (documented in .env.example and the README). */
export type NotificationConfig = {
  /** NOTIFICATION_HEARTBEAT_INTERVAL_MS: a heartbeat on an idle stream, and the access re-check. */
  readonly heartbeatIntervalMs: number;
  /** NOTIFICATION_CATCH_UP_INTERVAL_MS: a live stream reads the store this often even without a poke. */
  readonly catchUpIntervalMs: number;
  /** NOTIFICATION_MAX_STREAMS_PER_PATIENT: open WatchNotifications streams per patient on one instance. */
  readonly maxStreamsPerPatient: number;
  /** NOTIFICATION_DISPATCH_INTERVAL_MS: how often channel deliveries that are due are looked for. */
  readonly dispatchIntervalMs: number;
  /** NOTIFICATION_DISPATCH_BATCH: deliveries claimed per round. */
  readonly dispatchBatch: number;
  /** NOTIFICATION_DELIVERY_MAX_ATTEMPTS: attempts before a channel delivery is FAILED. */
  readonly deliveryMaxAttempts: number;
  /** NOTIFICATION_DELIVERY_RETRY_BASE_MS: first retry delay; doubles per attempt up to 15 minutes. */
  readonly deliveryRetryBaseMs: number;
  /** NOTIFICATION_DEFAULT_TIME_ZONE: the time zone of quiet hours for patients who set none. */
  readonly defaultTimeZone: string;
  /** NOTIFICATION_REMINDER_OFFSETS: default consultation reminder offsets, seconds before the start. */
  readonly defaultReminderOffsetsSeconds: readonly number[];
  /** NATS_CLIENT_NAME: the connection's name on the NATS server. */
  readonly natsClientName: string;
  /** NATS_CONNECT_TIMEOUT_MS: start-up fails when NATS does not answer within it. */
  readonly natsConnectTimeoutMs: number;
  /** NATS_RECONNECT_WAIT_MS: pause between reconnect attempts (forever). */
  readonly natsReconnectWaitMs: number;
};

/** Reads the notifications settings; problems are recorded on `read`. */
export function readNotificationConfig(read: EnvReader): NotificationConfig {
  return {
    heartbeatIntervalMs: read.integer("NOTIFICATION_HEARTBEAT_INTERVAL_MS", 15_000, 100, 300_000),
    catchUpIntervalMs: read.integer("NOTIFICATION_CATCH_UP_INTERVAL_MS", 30_000, 100, 600_000),
    maxStreamsPerPatient: read.integer("NOTIFICATION_MAX_STREAMS_PER_PATIENT", 8, 1, 100),
    dispatchIntervalMs: read.integer("NOTIFICATION_DISPATCH_INTERVAL_MS", 1_000, 10, 600_000),
    dispatchBatch: read.integer("NOTIFICATION_DISPATCH_BATCH", 50, 1, 1_000),
    deliveryMaxAttempts: read.integer("NOTIFICATION_DELIVERY_MAX_ATTEMPTS", 8, 1, 50),
    deliveryRetryBaseMs: read.integer("NOTIFICATION_DELIVERY_RETRY_BASE_MS", 2_000, 10, 600_000),
    defaultTimeZone: timeZone(read, "NOTIFICATION_DEFAULT_TIME_ZONE", "UTC"),
    defaultReminderOffsetsSeconds: offsets(read, "NOTIFICATION_REMINDER_OFFSETS", [86_400, 900]),
    natsClientName: read.raw("NATS_CLIENT_NAME") ?? "patient-service",
    natsConnectTimeoutMs: read.integer("NATS_CONNECT_TIMEOUT_MS", 5_000, 100, 120_000),
    natsReconnectWaitMs: read.integer("NATS_RECONNECT_WAIT_MS", 2_000, 10, 60_000),
  };
}

/** True when the runtime knows `zone` as an IANA time zone. */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function timeZone(read: EnvReader, name: string, fallback: string): string {
  const zone = read.raw(name);
  if (zone === undefined) return fallback;
  if (!isKnownTimeZone(zone)) {
    read.problem(name, "must be an IANA time zone, for example UTC or Asia/Kolkata");
    return fallback;
  }
  return zone;
}

/** `24h,15m` (units s, m, h, d): 1 to 4 offsets from 5 minutes to 7 days, the largest first. */
function offsets(read: EnvReader, name: string, fallback: readonly number[]): readonly number[] {
  const text = read.raw(name);
  if (text === undefined) return fallback;
  const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
  const parsed = text.split(",").map((part) => {
    const match = /^(\d{1,6})([smhd])$/.exec(part.trim());
    return match === null ? Number.NaN : Number(match[1]) * (unit[match[2] as string] as number);
  });
  if (parsed.length > 4 || parsed.some((value) => Number.isNaN(value) || value < 300 || value > 604_800)) {
    read.problem(name, "must list 1 to 4 offsets like 24h,15m, each from 5m to 7d");
    return fallback;
  }
  return [...new Set(parsed)].sort((a, b) => b - a);
}
