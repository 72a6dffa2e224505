import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStatusCache, RedisStatusCache, type StatusCache } from "../../src/consultations/status-cache.ts";

const redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 2 });
afterAll(() => redis.disconnect());

const caches: Array<[string, () => StatusCache]> = [
  ["in Redis", () => new RedisStatusCache(redis, `patient-test:${randomUUID()}:status:`, 60_000, false)],
  ["in process", () => new MemoryStatusCache(60_000)],
];

describe.each(caches)("the consultation status cache %s", (_, make) => {
  it("a read that raced a change cannot put the old status back after the change committed", async () => {
    const cache = make();
    await cache.populate("c1", 1, "scheduled");
    // A reader misses (say the entry expired) and reads version 1 from the database …
    const readerSaw = { version: 1, value: "scheduled" };
    // … meanwhile a cancel commits version 2, invalidating before and after its commit …
    await cache.invalidate("c1", 2);
    expect(await cache.get("c1")).toBeUndefined();
    // … and only then does the reader try to populate with what it read: refused.
    await cache.populate("c1", readerSaw.version, readerSaw.value);
    expect(await cache.get("c1")).toBeUndefined();
    // The next reader reads version 2 and caches it.
    await cache.populate("c1", 2, "cancelled");
    expect(await cache.get("c1")).toBe("cancelled");
  });

  it("never goes back: an older version never replaces a newer one, and an older invalidation leaves a newer value", async () => {
    const cache = make();
    await cache.populate("c2", 3, "ongoing");
    await cache.populate("c2", 2, "scheduled");
    expect(await cache.get("c2")).toBe("ongoing");
    await cache.invalidate("c2", 2);
    expect(await cache.get("c2")).toBe("ongoing");
    await cache.invalidate("c2", 3);
    expect(await cache.get("c2")).toBeUndefined();
  });

  it("a change that rolled back only causes misses until a newer version is read", async () => {
    const cache = make();
    await cache.populate("c3", 4, "scheduled");
    await cache.invalidate("c3", 5); // the change's transaction then rolls back: version 4 stays current
    await cache.populate("c3", 4, "scheduled");
    expect(await cache.get("c3")).toBeUndefined();
  });
});

describe("the Redis cache's entries expire", () => {
  it("carry the configured ttl", async () => {
    const prefix = `patient-test:${randomUUID()}:status:`;
    const cache = new RedisStatusCache(redis, prefix, 1500, false);
    await cache.populate("c4", 1, "scheduled");
    const ttl = await redis.pttl(`${prefix}c4`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1500);
  });
});
