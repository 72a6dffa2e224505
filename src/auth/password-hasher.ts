import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt's cost parameters; stored with every hash so they can be raised later. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  /** Block size. */
  readonly r: number;
  /** Parallelisation. */
  readonly p: number;
  /** Derived key length in bytes. */
  readonly keyLength: number;
}

/**
 * The production parameters: N=2^15, r=8, p=1 use 32 MiB and one threadpool thread for
 * 140-200 ms per hash on our two-core machines, so the default four-thread libuv pool
 * needs at most 128 MiB and one core verifies about five passwords a second. OWASP's cheat sheet asks for N=2^17 (or N=2^15 with p=3), about
 * three times this cost; raising `p` later is a configuration change, and
 * `needsRehash` lets a login upgrade the stored hash.
 */
export const defaultScryptParams: ScryptParams = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 };

const scheme = "scrypt";
const saltLength = 16;
/** Refuse stored parameters beyond these: a corrupt row must not make us allocate gigabytes. */
const ceiling = { N: 2 ** 20, r: 32, p: 16, keyLength: 64 };

interface ParsedHash {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/**
 * Hashes passwords with scrypt from node:crypto (asynchronous, on the libuv threadpool)
 * into self-describing strings `scrypt$N$r$p$salt$hash` (salt and hash base64url).
 * Passwords are NFKC-normalised first, so the same password typed on different
 * keyboards (composed or decomposed accents) verifies.
 */
export class PasswordHasher {
  readonly #params: ScryptParams;

  /** `params` lower than the default are for tests only. */
  constructor(params: ScryptParams = defaultScryptParams) {
    if (!isValidParams(params)) throw new RangeError("scrypt parameters out of range");
    this.#params = params;
  }

  /** A new hash with a fresh random salt. */
  async hash(password: string): Promise<string> {
    const salt = randomBytes(saltLength);
    const { N, r, p } = this.#params;
    const key = await derive(password, salt, this.#params);
    return [scheme, N, r, p, salt.toString("base64url"), key.toString("base64url")].join("$");
  }

  /**
   * True when `password` matches `stored`. A malformed `stored` answers false after
   * spending a normal verification's time, so it looks like any wrong password.
   */
  async verify(password: string, stored: string): Promise<boolean> {
    const parsed = parse(stored);
    if (parsed === undefined) {
      await this.dummyVerify();
      return false;
    }
    const key = await derive(password, parsed.salt, parsed.params);
    return timingSafeEqual(key, parsed.hash);
  }

  /** True when `stored` was made with other parameters than this hasher's (or is unreadable). */
  needsRehash(stored: string): boolean {
    const parsed = parse(stored);
    if (parsed === undefined) return true;
    const now = this.#params;
    const then = parsed.params;
    return then.N !== now.N || then.r !== now.r || then.p !== now.p || then.keyLength !== now.keyLength;
  }

  /**
   * Spends the time of one verification with the current parameters, for a login with
   * an unknown email: the answer's timing must not tell whether an account exists.
   */
  async dummyVerify(): Promise<void> {
    const key = await derive(randomBytes(12).toString("base64url"), randomBytes(saltLength), this.#params);
    timingSafeEqual(key, Buffer.alloc(key.length));
  }
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const { N, r, p, keyLength } = params;
  // scrypt needs 128·N·r bytes for its table plus 128·r·p for its blocks; Node's default
  // maxmem (32 MiB) is exactly the table at 2^15, so give it room.
  const maxmem = 128 * N * r + 128 * r * p + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFKC"), salt, keyLength, { N, r, p, maxmem }, (error, key) =>
      error === null ? resolve(key) : reject(error),
    );
  });
}

function parse(stored: string): ParsedHash | undefined {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== scheme) return undefined;
  const [N, r, p] = parts.slice(1, 4).map((part) => (/^[1-9][0-9]{0,9}$/.test(part) ? Number(part) : Number.NaN));
  const salt = Buffer.from(parts[4] ?? "", "base64url");
  const hash = Buffer.from(parts[5] ?? "", "base64url");
  const params = { N: N ?? Number.NaN, r: r ?? Number.NaN, p: p ?? Number.NaN, keyLength: hash.length };
  if (!isValidParams(params) || salt.length < 8) return undefined;
  return { params, salt, hash };
}

function isValidParams(params: ScryptParams): boolean {
  const { N, r, p, keyLength } = params;
  const powerOfTwo = Number.isInteger(N) && N >= 2 && (N & (N - 1)) === 0;
  return (
    powerOfTwo &&
    N <= ceiling.N &&
    Number.isInteger(r) &&
    r >= 1 &&
    r <= ceiling.r &&
    Number.isInteger(p) &&
    p >= 1 &&
    p <= ceiling.p &&
    Number.isInteger(keyLength) &&
    keyLength >= 16 &&
    keyLength <= ceiling.keyLength
  );
}
