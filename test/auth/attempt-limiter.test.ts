import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttemptLimiter, type AttemptLimitsByKind, defaultAttemptLimits } from "../../src/auth/attempt-limiter.ts";
import { MemoryAttemptLimiter } from "../../src/auth/memory-attempt-limiter.ts";
import { RedisAttemptLimiter } from "../../src/auth/redis-attempt-limiter.ts";
import { connectTestRedis, deleteKeysUnder, keysUnder, uniqueRedisPrefix } from "./test-redis.ts";

const limits: AttemptLimitsByKind = {
  account: { maxFailures: 3, windowSeconds: 60 },
  address: { maxFailures: 5, windowSeconds: 60 },
  quick: { maxFailures: 2, windowSeconds: 1 },
  many: { maxFailures: 20, windowSeconds: 60 },
};

let redis: Redis;
const prefix = uniqueRedisPrefix("attempts");
beforeAll(() => {
  redis = connectTestRedis();
});
afterAll(async () => {
  await deleteKeysUnder(redis, prefix);
  await redis.quit();
});

/** Every test gets fresh keys, so the two implementations and the tests do not meet. */
let serial = 0;
const fresh = (kind: string) => `${kind}:user-${Date.now()}-${++serial}@example.com`;

async function failTimes(limiter: AttemptLimiter, keys: string[], times: number): Promise<void> {
  for (let i = 0; i < times; i++) await limiter.fail(keys);
}

const implementations: [string, () => AttemptLimiter][] = [
  ["MemoryAttemptLimiter", () => new MemoryAttemptLimiter({ limits })],
  ["RedisAttemptLimiter", () => new RedisAttemptLimiter({ redis, limits, keyPrefix: prefix })],
];

describe.each(implementations)("%s", (_name, make) => {
  it("allows attempts until the limit of failures, then refuses with the time left in the window", async () => {
    const limiter = make();
    const keys = [fresh("account")];
    expect(await limiter.check(keys)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    await failTimes(limiter, keys, 2);
    expect(await limiter.check(keys)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    await limiter.fail(keys);
    const verdict = await limiter.check(keys);
    expect(verdict.allowed).toBe(false);
    expect(verdict.retryAfterSeconds).toBeGreaterThan(55);
    expect(verdict.retryAfterSeconds).toBeLessThanOrEqual(60);
  });

  it("counts each key apart: one account's failures do not block another", async () => {
    const limiter = make();
    const blocked = fresh("account");
    await failTimes(limiter, [blocked], 3);
    expect((await limiter.check([blocked])).allowed).toBe(false);
    expect((await limiter.check([fresh("account")])).allowed).toBe(true);
  });

  it("refuses when any of the keys is over its limit: many accounts tried from one address", async () => {
    const limiter = make();
    const address = fresh("address");
    for (let i = 0; i < 5; i++) await limiter.fail([fresh("account"), address]);
    expect((await limiter.check([fresh("account"), address])).allowed).toBe(false);
    expect((await limiter.check([fresh("account"), fresh("address")])).allowed).toBe(true);
  });

  it("reports the longest wait among the blocking keys", async () => {
    const limiter = make();
    const quick = fresh("quick");
    const account = fresh("account");
    await failTimes(limiter, [quick, account], 3);
    expect(await limiter.check([quick])).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect((await limiter.check([quick, account])).retryAfterSeconds).toBeGreaterThan(55);
  });

  it("starts again after a reset of the key", async () => {
    const limiter = make();
    const account = fresh("account");
    const address = fresh("address");
    await failTimes(limiter, [account, address], 3);
    await limiter.reset([account]);
    expect((await limiter.check([account, address])).allowed).toBe(true);
    await failTimes(limiter, [account], 2);
    expect((await limiter.check([account])).allowed).toBe(true);
    await limiter.fail([account]);
    expect((await limiter.check([account])).allowed).toBe(false);
  });

  it("allows again once the window from the first failure has ended", async () => {
    const limiter = make();
    const quick = fresh("quick");
    await failTimes(limiter, [quick], 2);
    expect((await limiter.check([quick])).allowed).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await limiter.check([quick])).toEqual({ allowed: true, retryAfterSeconds: 0 });
    await limiter.fail([quick]);
    expect((await limiter.check([quick])).allowed).toBe(true);
  });

  it("counts concurrent failures exactly", async () => {
    const limiter = make();
    const many = fresh("many");
    await Promise.all(Array.from({ length: 19 }, () => limiter.fail([many])));
    expect((await limiter.check([many])).allowed).toBe(true);
    await limiter.fail([many]);
    expect((await limiter.check([many])).allowed).toBe(false);
  });

  it("counts concurrent attempts before they are tried: no more get through than the limit", async () => {
    const limiter = make();
    const keys = [fresh("account")];
    const verdicts = await Promise.all(Array.from({ length: 10 }, () => limiter.attempt(keys)));
    expect(verdicts.filter((verdict) => verdict.allowed)).toHaveLength(3);
    expect(verdicts.filter((verdict) => !verdict.allowed)[0]?.retryAfterSeconds).toBeGreaterThan(55);
  });

  it("takes a forgiven attempt back, never below zero", async () => {
    const limiter = make();
    const keys = [fresh("account")];
    await limiter.forgive(keys);
    for (let i = 0; i < 3; i++) {
      expect((await limiter.attempt(keys)).allowed).toBe(true);
      await limiter.forgive(keys);
    }
    await limiter.attempt(keys);
    await limiter.attempt(keys);
    await limiter.attempt(keys);
    expect((await limiter.attempt(keys)).allowed).toBe(false);
  });

  it("refuses keys of a kind it has no limit for", async () => {
    const limiter = make();
    await expect(limiter.check(["mystery:x"])).rejects.toThrow(/no attempt limit for keys of kind "mystery"/);
    await expect(limiter.fail(["constructor:x"])).rejects.toThrow(RangeError);
  });
});

describe("defaultAttemptLimits", () => {
  it("limits an account to 5 failures and a client address to 50 in 15 minutes", () => {
    expect(defaultAttemptLimits).toEqual({
      account: { maxFailures: 5, windowSeconds: 900 },
      address: { maxFailures: 50, windowSeconds: 900 },
    });
  });
});

describe("RedisAttemptLimiter storage", () => {
  it("keeps hashed keys under its prefix, no email in Redis, each expiring with its window", async () => {
    const own = uniqueRedisPrefix("attempts-storage");
    const limiter = new RedisAttemptLimiter({ redis, limits, keyPrefix: own });
    await limiter.fail(["account:asha@example.com", "address:203.0.113.7"]);
    const keys = (await keysUnder(redis, own)).sort();
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(new RegExp(`^${own}account:[0-9a-f]{64}$`));
    expect(keys[1]).toMatch(new RegExp(`^${own}address:[0-9a-f]{64}$`));
    expect(keys.join()).not.toMatch(/asha|example|203\.0/);
    for (const key of keys) {
      expect(await redis.get(key)).toBe("1");
      expect(await redis.pttl(key)).toBeGreaterThan(59_000);
    }
    await limiter.reset(["account:asha@example.com", "address:203.0.113.7"]);
    expect(await keysUnder(redis, own)).toEqual([]);
  });

  it("rejects (fails closed) when Redis cannot be reached", async () => {
    const { Redis } = await import("ioredis");
    const down = new Redis("redis://127.0.0.1:1", {
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    down.on("error", () => {});
    const limiter = new RedisAttemptLimiter({ redis: down, limits, keyPrefix: prefix });
    await expect(limiter.check([fresh("account")])).rejects.toThrow();
    down.disconnect();
  });
});

describe("MemoryAttemptLimiter bounds", () => {
  it("forgets expired windows and, when full, the oldest, so memory stays bounded", async () => {
    let now = 1_000_000;
    const limiter = new MemoryAttemptLimiter({ limits, maxKeys: 10, now: () => now });
    const first = "account:first@example.com";
    await limiter.fail([first]);
    for (let i = 0; i < 25; i++) await limiter.fail([`account:flood-${i}@example.com`]);
    expect(limiter.size).toBeLessThanOrEqual(10);
    await failTimes(limiter, [first], 2);
    expect((await limiter.check([first])).allowed).toBe(true); // its first failure was dropped with the oldest
    now += 60_000;
    await limiter.fail(["account:later@example.com"]);
    expect(limiter.size).toBe(1);
  });

  it("follows its clock: blocked until the window ends", async () => {
    let now = 5_000_000;
    const limiter = new MemoryAttemptLimiter({ limits, now: () => now });
    const account = "account:clock@example.com";
    await failTimes(limiter, [account], 3);
    now += 45_000;
    expect(await limiter.check([account])).toEqual({ allowed: false, retryAfterSeconds: 15 });
    now += 15_000;
    expect(await limiter.check([account])).toEqual({ allowed: true, retryAfterSeconds: 0 });
  });
});
