import { createHash } from "node:crypto";

/** At most `maxFailures` failures within `windowSeconds` of the first one. */
export interface AttemptLimit {
  readonly maxFailures: number;
  /** May be fractional (tests); stored in milliseconds. */
  readonly windowSeconds: number;
}

/**
 * Limits by kind of key: the part of a key before its first `:` picks the limit, so
 * `account:asha@example.com` counts against `account` and `address:203.0.113.7` against
 * `address`. A key of a kind without a limit is a programming error and throws.
 */
export type AttemptLimitsByKind = Readonly<Record<string, AttemptLimit>>;

/**
 * The defaults for credential checks (password and second factor): 5 failures per
 * account in 15 minutes keeps online guessing to 480 a day, far below what a 12-character
 * password or a 6-digit code (one step either side) needs; 50 per client address in 15
 * minutes leaves room for a clinic or a carrier NAT sharing one address.
 */
export const defaultAttemptLimits = {
  account: { maxFailures: 5, windowSeconds: 15 * 60 },
  address: { maxFailures: 50, windowSeconds: 15 * 60 },
} as const satisfies AttemptLimitsByKind;

/** Whether another attempt may go ahead, and if not, in how many seconds one may. */
export interface AttemptVerdict {
  readonly allowed: boolean;
  /** 0 when allowed; otherwise whole seconds until the longest blocking window ends. */
  readonly retryAfterSeconds: number;
}

/**
 * Counts failed attempts per key in fixed windows that start at a key's first failure.
 * The caller asks `check` before trying a credential, reports `fail` when it was wrong,
 * and may `reset` a key (the account's, after a success). `check` and `fail` are separate
 * calls, so attempts running concurrently with the last allowed one are not counted
 * until they fail.
 */
export interface AttemptLimiter {
  check(keys: readonly string[]): Promise<AttemptVerdict>;
  fail(keys: readonly string[]): Promise<void>;
  reset(keys: readonly string[]): Promise<void>;
  /**
   * Counts this attempt against every key before the credential is checked, in one
   * atomic step per key, and refuses it when a key had already reached its limit. So
   * concurrent guesses are all counted: `check` then `fail` would let every request
   * that checked before the others failed through (scrypt takes ~150 ms).
   */
  attempt(keys: readonly string[]): Promise<AttemptVerdict>;
  /** Takes a counted attempt back (it succeeded), never below zero. */
  forgive(keys: readonly string[]): Promise<void>;
}

/** A key as stored: its kind in clear, the rest SHA-256 hex, so no email or address is kept. */
export interface StoredKey {
  readonly id: string;
  readonly limit: AttemptLimit;
  readonly windowMs: number;
}

/** Looks up the limit of each key and hashes it. */
export function storedKeys(keys: readonly string[], limits: AttemptLimitsByKind): StoredKey[] {
  return keys.map((key) => {
    const colon = key.indexOf(":");
    const kind = colon < 0 ? key : key.slice(0, colon);
    const limit = Object.hasOwn(limits, kind) ? limits[kind] : undefined;
    if (limit === undefined) throw new RangeError(`no attempt limit for keys of kind "${kind}"`);
    const digest = createHash("sha256").update(key, "utf8").digest("hex");
    return { id: `${kind}:${digest}`, limit, windowMs: Math.max(1, Math.ceil(limit.windowSeconds * 1000)) };
  });
}

/** The verdict for keys whose counts and remaining window times are known. */
export function verdict(
  entries: readonly { count: number; remainingMs: number; limit: AttemptLimit }[],
): AttemptVerdict {
  let blockedMs = 0;
  for (const entry of entries) {
    if (entry.count >= entry.limit.maxFailures) blockedMs = Math.max(blockedMs, entry.remainingMs, 1);
  }
  return { allowed: blockedMs === 0, retryAfterSeconds: Math.ceil(blockedMs / 1000) };
}
