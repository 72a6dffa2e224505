import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultRevocationChannel, RedisRevocationBus } from "../../src/auth/redis-revocation-bus.ts";
import { InProcessRevocationBus, type RevocationBus, type RevocationNotice } from "../../src/auth/revocation-bus.ts";
import { connectTestRedis, uniqueRedisPrefix } from "./test-redis.ts";

/** Resolves with the next notice `bus` delivers, or rejects after two seconds. */
function nextNotice(bus: RevocationBus): Promise<RevocationNotice> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error("no revocation notice within 2 s"));
    }, 2000);
    const stop = bus.subscribe((notice) => {
      clearTimeout(timer);
      stop();
      resolve(notice);
    });
  });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

describe("InProcessRevocationBus", () => {
  it("delivers synchronously: listeners have run before publish returns", () => {
    const bus = new InProcessRevocationBus();
    const seen: RevocationNotice[] = [];
    bus.subscribe((notice) => seen.push(notice));
    void bus.publish({ kind: "session", sessionId: "s-1" });
    expect(seen).toEqual([{ kind: "session", sessionId: "s-1" }]);
  });

  it("stops delivering to a listener that unsubscribed", async () => {
    const bus = new InProcessRevocationBus();
    const seen: string[] = [];
    const stop = bus.subscribe(() => seen.push("a"));
    bus.subscribe(() => seen.push("b"));
    stop();
    await bus.publish({ kind: "account", accountId: "a-1" });
    expect(seen).toEqual(["b"]);
  });

  it("reports a failing listener and still delivers to the others", async () => {
    const errors: unknown[] = [];
    const bus = new InProcessRevocationBus({ onError: (error) => errors.push(error) });
    const seen: RevocationNotice[] = [];
    bus.subscribe(() => {
      throw new Error("listener broke");
    });
    bus.subscribe((notice) => seen.push(notice));
    await bus.publish({ kind: "account", accountId: "a-2" });
    expect(seen).toHaveLength(1);
    expect(errors).toEqual([new Error("listener broke")]);
  });

  it("refuses to publish once closed", async () => {
    const bus = new InProcessRevocationBus();
    await bus.close();
    await expect(bus.publish({ kind: "session", sessionId: "s-2" })).rejects.toThrow(/closed/);
  });
});

describe("RedisRevocationBus", () => {
  let redisA: Redis;
  let redisB: Redis;
  let channel: string;
  let a: RedisRevocationBus;
  let b: RedisRevocationBus;
  const errors: unknown[] = [];

  beforeAll(async () => {
    // Two connections, as two instances of the service would have.
    redisA = connectTestRedis();
    redisB = connectTestRedis();
    channel = `${uniqueRedisPrefix("revocations")}channel`;
    a = await RedisRevocationBus.open({ redis: redisA, channel, onError: () => {} });
    b = await RedisRevocationBus.open({ redis: redisB, channel, onError: (error) => errors.push(error) });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redisA?.quit();
    await redisB?.quit();
  });

  it("uses the channel patient-service:revocations by default", () => {
    expect(defaultRevocationChannel).toBe("patient-service:revocations");
  });

  it("carries a notice published on one instance to the other, both ways", async () => {
    const atB = nextNotice(b);
    await a.publish({ kind: "session", sessionId: "session-1" });
    expect(await atB).toEqual({ kind: "session", sessionId: "session-1" });
    const atA = nextNotice(a);
    await b.publish({ kind: "account", accountId: "account-1" });
    expect(await atA).toEqual({ kind: "account", accountId: "account-1" });
  });

  it("delivers to the publishing instance at once, and only once", async () => {
    const seen: RevocationNotice[] = [];
    const stop = a.subscribe((notice) => seen.push(notice));
    const published = a.publish({ kind: "account", accountId: "account-2" });
    expect(seen).toEqual([{ kind: "account", accountId: "account-2" }]);
    await published;
    await settle();
    expect(seen).toHaveLength(1);
    stop();
  });

  it("reports an unreadable message on the channel and delivers nothing", async () => {
    const seen: RevocationNotice[] = [];
    const stop = b.subscribe((notice) => seen.push(notice));
    await redisA.publish(channel, "not json");
    await redisA.publish(channel, JSON.stringify({ origin: "x", notice: { kind: "session" } }));
    await settle();
    expect(seen).toEqual([]);
    expect(errors).toHaveLength(2);
    stop();
  });

  it("stops hearing and refuses to publish once closed", async () => {
    const redisC = connectTestRedis();
    const c = await RedisRevocationBus.open({ redis: redisC, channel });
    const seen: RevocationNotice[] = [];
    c.subscribe((notice) => seen.push(notice));
    await c.close();
    await a.publish({ kind: "session", sessionId: "session-3" });
    await settle();
    expect(seen).toEqual([]);
    await expect(c.publish({ kind: "session", sessionId: "session-4" })).rejects.toThrow(/closed/);
    expect(redisC.status).toBe("ready"); // the caller's connection stays open
    await redisC.quit();
  });
});
