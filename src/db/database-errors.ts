/**
 * Whether an error of the database driver (pg, through MikroORM) says that PostgreSQL
 * cannot be reached or went away, rather than anything about the statement: a refused
 * or timed-out connect, a connection cut mid-query, a server shutting down, starting
 * up or in crash recovery. Such errors answer UNAVAILABLE (error-mapping.ts), and
 * CreateEmergency falls back to its local journal on them (emergencies/journal/).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 3; depth += 1) {
    if (typeof current !== "object") return false;
    const name = (current as object).constructor?.name ?? "";
    const code = (current as { code?: unknown }).code;
    if (name === "ConnectionException") return true;
    if (typeof code === "string" && (networkCodes.has(code) || code.startsWith("08") || serverGoneCodes.has(code))) {
      return true;
    }
    const message = (current as { message?: unknown }).message;
    if (typeof message === "string" && goneMessages.some((pattern) => pattern.test(message))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Socket errors of a connect or of an open connection. */
const networkCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EAI_AGAIN",
]);

/** SQLSTATEs of a server that is going or not yet there (class 08 is matched by prefix). */
const serverGoneCodes: ReadonlySet<string> = new Set(["57P01", "57P02", "57P03", "53300"]);

/** pg's own errors carry no code, only these messages. */
const goneMessages: readonly RegExp[] = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /not queryable/,
  /^Client was closed and is not queryable/,
  /^Cannot use a pool after calling end on the pool/,
];
