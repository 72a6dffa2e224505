import type { EnvReader } from "../config/env-readers.ts";

/** Settings of the consultations context (documented in .env.example and the README). */
export type ConsultationConfig = {};

/** Reads the consultations settings; problems are recorded on `read`. */
export function readConsultationConfig(_read: EnvReader): ConsultationConfig {
  return {};
}
