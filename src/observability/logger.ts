import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger } from "pino";

/**
 * Paths that may carry protected health information, contact details or secrets.
 * Log calls should not pass such values at all; this list is the safety net for
 * the ones that slip through (a request or an entity logged by mistake).
 */
const redactedPaths = [
  "*.legalName",
  "*.legal_name",
  "*.birthDate",
  "*.birth_date",
  "*.contact",
  "*.email",
  "*.phone",
  "*.address",
  "*.upiId",
  "*.upi_id",
  "*.insurance",
  "*.emergencyContacts",
  "*.emergency_contacts",
  "*.password",
  "*.token",
  "*.authorization",
  "*.headers.authorization",
  "*.headers.cookie",
  "req.headers.authorization",
  "req.headers.cookie",
];

/** Creates the service's JSON logger. `destination` lets tests capture what is logged. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: "patient-service" },
    redact: { paths: redactedPaths, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
