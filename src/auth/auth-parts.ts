import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { AttemptLimits, Passwords, RecoveryCodes, Totp } from "./auth-deps.ts";
import { weakPassword } from "./auth-errors.ts";
import { MemoryAttemptLimiter } from "./memory-attempt-limiter.ts";
import { PasswordHasher, defaultScryptParams } from "./password-hasher.ts";
import { passwordProblems } from "./password-policy.ts";
import { generateRecoveryCodes, hashRecoveryCode } from "./recovery-codes.ts";
import { RedisAttemptLimiter } from "./redis-attempt-limiter.ts";
import { RedisRevocationBus } from "./redis-revocation-bus.ts";
import { InProcessRevocationBus, type RevocationBus } from "./revocation-bus.ts";
import { SecretBox } from "./secret-box.ts";
import { checkTotp, newTotpSecret, otpauthUri } from "./totp.ts";

/** scrypt with N = 2^cost (15 in production). */
export function passwordsWith(cost: number): Passwords {
  const hasher = new PasswordHasher({ ...defaultScryptParams, N: 2 ** cost });
  return {
    hash: (password) => hasher.hash(password),
    verify: (password, stored) => hasher.verify(password, stored),
    dummyVerify: () => hasher.dummyVerify(),
    needsRehash: (stored) => hasher.needsRehash(stored),
    requireStrong(password, context, field) {
      const problems = passwordProblems(password, context);
      if (problems.length > 0) throw weakPassword(field, problems);
    },
  };
}

/** TOTP (RFC 6238, authenticator-app settings). The caller stores the step to refuse reuse. */
export const totp: Totp = {
  newSecret: newTotpSecret,
  uri: (label, secret) => otpauthUri({ label, secret }),
  async check(secret, code, now) {
    const result = checkTotp(secret, code, { now });
    return result.valid ? result.step : undefined;
  },
};

export const recoveryCodes: RecoveryCodes = {
  generate: () => generateRecoveryCodes(),
  hash: hashRecoveryCode,
};

/** A SecretBox with one key, named by a short digest of it so a rotated key gets a new id. */
export function secretBoxFor(key: Buffer): SecretBox {
  const keyId = createHash("sha256").update(key).digest("hex").slice(0, 12);
  return new SecretBox({ currentKeyId: keyId, keys: new Map([[keyId, key]]) });
}

/** The parts that live in Redis when REDIS_URL is set, or in this process. */
export interface SharedState {
  readonly limits: AttemptLimits;
  readonly revocations: RevocationBus;
  close(): Promise<void>;
}

export async function openSharedState(redisUrl: string | undefined, keyPrefix: string): Promise<SharedState> {
  if (redisUrl === undefined) {
    const revocations = new InProcessRevocationBus();
    return { limits: new MemoryAttemptLimiter(), revocations, close: () => revocations.close() };
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, enableAutoPipelining: true });
  const revocations = await RedisRevocationBus.open({ redis, channel: `${keyPrefix}revocations` });
  return {
    limits: new RedisAttemptLimiter({ redis, keyPrefix: `${keyPrefix}attempts:` }),
    revocations,
    async close() {
      await revocations.close();
      redis.disconnect();
    },
  };
}
