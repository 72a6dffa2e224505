import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

/**
 * The shared Redis of development machines and CI (127.0.0.1:6379), or TEST_REDIS_URL.
 * Tests keep to keys and channels under a prefix of their own, so runs do not meet.
 */
export function connectTestRedis(): Redis {
  return new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
}

/** `test:<name>:<random>:`, unique per call. */
export function uniqueRedisPrefix(name: string): string {
  return `test:${name}:${randomBytes(6).toString("hex")}:`;
}

/** Every key under `prefix`. */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found;
}

/** Deletes what a test left under `prefix`. */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
}
