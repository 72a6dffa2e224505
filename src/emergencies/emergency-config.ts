import type { EnvReader } from "../config/env-readers.ts";

/** Settings of the emergencies context (documented in .env.example and the README). */
export type EmergencyConfig = Readonly<Record<string, never>>;

/** Reads the emergencies settings; problems are recorded on `read`. */
export function readEmergencyConfig(_read: EnvReader): EmergencyConfig {
  return {};
}
