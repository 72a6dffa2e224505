import type { EnvReader } from "../config/env-readers.ts";

/** Settings of the notifications context (documented in .env.example and the README). */
export type NotificationConfig = {};

/** Reads the notifications settings; problems are recorded on `read`. */
export function readNotificationConfig(_read: EnvReader): NotificationConfig {
  return {};
}
