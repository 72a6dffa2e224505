/**
 * Errors the domain throws. Each carries a stable UPPER_SNAKE `reason` (sent to
 * clients as google.rpc.ErrorInfo, AIP-193) and a message that is safe to show:
 * it must never contain health data, secrets or another patient's data.
 * The RPC layer maps each kind to one status code (src/rpc/error-mapping.ts).
 */
export type DomainErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "aborted"
  | "permission-denied"
  | "unauthenticated"
  | "resource-exhausted"
  | "unavailable";

/** One invalid field of a request, for google.rpc.BadRequest. */
export interface FieldViolation {
  /** Path of the field in the request, for example `patient.contact.email`. */
  readonly field: string;
  /** What is wrong with it, for a person to read. */
  readonly description: string;
}

/** Base of every error the domain throws on purpose. */
export class DomainError extends Error {
  readonly kind: DomainErrorKind;
  readonly reason: string;
  readonly violations: readonly FieldViolation[];
  readonly metadata: Readonly<Record<string, string>>;
  /** For RESOURCE_EXHAUSTED and UNAVAILABLE: when a retry may succeed (google.rpc.RetryInfo). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    kind: DomainErrorKind,
    reason: string,
    message: string,
    options: {
      violations?: readonly FieldViolation[];
      metadata?: Record<string, string>;
      retryAfterSeconds?: number;
    } = {},
  ) {
    super(message);
    this.name = "DomainError";
    this.kind = kind;
    this.reason = reason;
    this.violations = options.violations ?? [];
    this.metadata = options.metadata ?? {};
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** The resource does not exist, or the caller may not know that it does. */
export function notFound(resource: string): DomainError {
  return new DomainError("not-found", `${toReason(resource)}_NOT_FOUND`, `${resource} not found.`);
}

/** Invalid input found by a domain rule (protovalidate catches the rest earlier). */
export function invalidArgument(field: string, description: string): DomainError {
  return new DomainError("invalid-argument", "INVALID_FIELD", `Invalid ${field}: ${description}`, {
    violations: [{ field, description }],
  });
}

/**
 * The request would duplicate something unique. `message` must not repeat the
 * conflicting value: an email address is personal data, and error messages end up
 * in logs, traces and other people's screens.
 */
export function alreadyExists(reason: string, message: string): DomainError {
  return new DomainError("already-exists", reason, message);
}

/**
 * The caller's etag names an older version than the stored one (AIP-154): someone
 * else changed the resource since the caller read it. ABORTED, so clients re-read
 * and retry rather than overwrite the other change.
 */
export function etagMismatch(resource: string): DomainError {
  return new DomainError(
    "aborted",
    "ETAG_MISMATCH",
    `The ${resource.toLowerCase()} changed since it was read. Get it again and retry with the new etag.`,
  );
}

function toReason(resource: string): string {
  return resource
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .replace(/\W+/g, "_")
    .toUpperCase();
}
