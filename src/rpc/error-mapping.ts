import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { isDatabaseUnavailable } from "../db/database-errors.ts";
import type { Logger } from "../observability/logger.ts";
import { DomainError, type DomainErrorKind, type FieldViolation } from "../shared/domain-errors.ts";

/** The `domain` of every google.rpc.ErrorInfo this service sends (AIP-193). */
export const errorDomain = "patient.telemed.example";

const codeOfKind: Record<DomainErrorKind, Code> = {
  "invalid-argument": Code.InvalidArgument,
  "not-found": Code.NotFound,
  "already-exists": Code.AlreadyExists,
  "failed-precondition": Code.FailedPrecondition,
  aborted: Code.Aborted,
  "permission-denied": Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  "resource-exhausted": Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/** Builds a ConnectError carrying ErrorInfo and, for bad fields, BadRequest details. */
export function statusError(
  code: Code,
  reason: string,
  message: string,
  violations: readonly FieldViolation[] = [],
  metadata: Record<string, string> = {},
  retryAfterSeconds?: number,
): ConnectError {
  const details: ConstructorParameters<typeof ConnectError>[3] = [
    { desc: ErrorInfoSchema, value: { reason, domain: errorDomain, metadata } },
  ];
  if (violations.length > 0) {
    details.push({
      desc: BadRequestSchema,
      value: { fieldViolations: violations.map((v) => ({ field: v.field, description: v.description })) },
    });
  }
  if (retryAfterSeconds !== undefined) {
    details.push({ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(Math.ceil(retryAfterSeconds)) } } });
  }
  return new ConnectError(message, code, undefined, details);
}

/**
 * Translates anything a handler threw into the error the client sees. Domain errors
 * and the database's "the data says no" errors get their own codes; anything else is
 * logged with the request id and answered as a bare INTERNAL, so no stack trace,
 * SQL or data ever reaches a client.
 */
export function toClientError(error: unknown, log: Logger): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof DomainError) {
    return statusError(
      codeOfKind[error.kind],
      error.reason,
      error.message,
      error.violations,
      { ...error.metadata },
      error.retryAfterSeconds,
    );
  }
  const known = fromDatabaseError(error);
  if (known) return known;
  log.error({ err: describe(error) }, "unexpected error in handler");
  return statusError(Code.Internal, "INTERNAL", "Internal error. Quote the request id when reporting it.");
}

/** Errors of the database driver that are about availability, not about the request. */
function fromDatabaseError(error: unknown): ConnectError | undefined {
  const name = error instanceof Error ? error.constructor.name : "";
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  // Refused, cut or timed-out connections, a server shutting down or recovering: never INTERNAL.
  if (isDatabaseUnavailable(error)) {
    return statusError(
      Code.Unavailable,
      "DATABASE_UNAVAILABLE",
      "The service is temporarily unavailable. Retry shortly.",
      [],
      {},
      1,
    );
  }
  if (name === "LockWaitTimeoutException" || code === "40001" || code === "40P01") {
    return statusError(Code.Aborted, "CONCURRENT_UPDATE", "A concurrent change got in the way. Retry the request.");
  }
  return undefined;
}

/**
 * Keeps the error's class, code and stack frames. Database errors lose their message
 * too: MikroORM's carry the SQL with its parameters, and the driver's `detail` echoes
 * row values, both of which can be health data.
 */
function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const fromDatabase = "sqlState" in error || error.constructor.name.endsWith("Exception");
  const frames = error.stack?.split("\n").slice(1, 7).join("\n");
  return {
    type: error.constructor.name,
    code: (error as { code?: unknown }).code,
    message: fromDatabase ? undefined : error.message.slice(0, 300),
    stack: frames,
  };
}
