import type { Redis } from "ioredis";
import {
  type AttemptLimiter,
  type AttemptLimitsByKind,
  type AttemptVerdict,
  defaultAttemptLimits,
  storedKeys,
  verdict,
} from "./attempt-limiter.ts";

/** Options of the Redis limiter. */
export interface RedisAttemptLimiterOptions {
  /** A connection the caller owns (and closes). */
  readonly redis: Redis;
  readonly limits?: AttemptLimitsByKind;
  /** Prepended to every key; tests use a unique one per run. */
  readonly keyPrefix?: string;
}

export const defaultAttemptKeyPrefix = "patient-service:attempts:";

/** The count and the window's remaining milliseconds, read together. */
const readScript = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
return { count, redis.call('PTTL', KEYS[1]) }`;

/**
 * One more failure; the window starts (and expires) with the first. A key that somehow
 * lost its expiry gets one again, so nothing stays locked for ever.
 */
const failScript = `
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count`;

/** One more attempt, counted before it is tried: the count before it and the window's remaining time. */
const attemptScript = `
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return { count - 1, redis.call('PTTL', KEYS[1]) }`;

/** Takes one attempt back, never below zero; the window keeps its end. */
const forgiveScript = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0`;

/**
 * Failed attempts counted in Redis, shared by every instance: `<prefix><kind>:<sha256>`
 * holds the count and expires when its window ends, so Redis does the cleaning. Each key
 * is updated by one small Lua script (atomic, and single-key so it also works on a
 * cluster). When Redis cannot be reached the calls reject: the caller fails closed.
 */
export class RedisAttemptLimiter implements AttemptLimiter {
  readonly #redis: Redis;
  readonly #limits: AttemptLimitsByKind;
  readonly #prefix: string;

  constructor(options: RedisAttemptLimiterOptions) {
    this.#redis = options.redis;
    this.#limits = options.limits ?? defaultAttemptLimits;
    this.#prefix = options.keyPrefix ?? defaultAttemptKeyPrefix;
  }

  async check(keys: readonly string[]): Promise<AttemptVerdict> {
    const entries = await Promise.all(
      storedKeys(keys, this.#limits).map(async ({ id, limit }) => {
        const [count, remainingMs] = (await this.#redis.eval(readScript, 1, this.#prefix + id)) as [number, number];
        return { count, remainingMs, limit };
      }),
    );
    return verdict(entries);
  }

  async fail(keys: readonly string[]): Promise<void> {
    await Promise.all(
      storedKeys(keys, this.#limits).map(({ id, windowMs }) =>
        this.#redis.eval(failScript, 1, this.#prefix + id, windowMs),
      ),
    );
  }

  async attempt(keys: readonly string[]): Promise<AttemptVerdict> {
    const entries = await Promise.all(
      storedKeys(keys, this.#limits).map(async ({ id, limit, windowMs }) => {
        const [count, remainingMs] = (await this.#redis.eval(attemptScript, 1, this.#prefix + id, windowMs)) as [
          number,
          number,
        ];
        return { count, remainingMs, limit };
      }),
    );
    return verdict(entries);
  }

  async forgive(keys: readonly string[]): Promise<void> {
    await Promise.all(
      storedKeys(keys, this.#limits).map(({ id }) => this.#redis.eval(forgiveScript, 1, this.#prefix + id)),
    );
  }

  async reset(keys: readonly string[]): Promise<void> {
    await Promise.all(storedKeys(keys, this.#limits).map(({ id }) => this.#redis.del(this.#prefix + id)));
  }
}
