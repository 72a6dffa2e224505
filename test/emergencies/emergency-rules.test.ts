import { describe, expect, it } from "vitest";
import { backoffMs, mergesInto, priorityOf, statusDecision } from "../../src/emergencies/emergency.ts";
import { InProcessLane } from "../../src/emergencies/lane/in-process-lane.ts";
import { PriorityScheduler } from "../../src/emergencies/lane/priority-scheduler.ts";
import { LaneNames } from "../../src/emergencies/lane/emergency-lane.ts";
import { createLogger } from "../../src/observability/logger.ts";

describe("emergency rules", () => {
  it("severity maps to priority", () => {
    expect([priorityOf("critical"), priorityOf("serious"), priorityOf("urgent")]).toEqual([1, 2, 3]);
  });

  it("status events apply only forward and only when newer", () => {
    expect(statusDecision("requested", 0, 2, "dispatched")).toEqual({ apply: true });
    expect(statusDecision("dispatched", 2, 2, "dispatched")).toEqual({ apply: false, skip: "duplicate_or_stale" });
    expect(statusDecision("en_route", 3, 2, "closed")).toEqual({ apply: false, skip: "duplicate_or_stale" });
    expect(statusDecision("on_scene", 4, 5, "en_route")).toEqual({ apply: false, skip: "backwards" });
    expect(statusDecision("cancelled", 1, 5, "dispatched")).toEqual({ apply: false, skip: "ended" });
    expect(statusDecision("en_route", 3, 4, "cancelled")).toEqual({ apply: true });
    expect(statusDecision("requested", 0, 1, "requested")).toEqual({ apply: false, skip: "not_a_paramedic_state" });
  });

  it("a repeat merges into an open, recent, not less urgent emergency only", () => {
    const now = new Date("2030-01-01T10:00:00Z");
    const open = { state: "dispatched" as const, priority: 2 as const, createdAt: new Date("2030-01-01T09:55:00Z") };
    expect(mergesInto(open, 2, now, 600)).toBe(true);
    expect(mergesInto(open, 3, now, 600)).toBe(true);
    expect(mergesInto(open, 1, now, 600)).toBe(false);
    expect(mergesInto(open, 2, now, 120)).toBe(false);
    expect(mergesInto({ ...open, state: "closed" }, 2, now, 600)).toBe(false);
  });

  it("backoff doubles up to the cap", () => {
    const fixed = () => 0.5;
    expect([1, 2, 3, 10].map((n) => backoffMs(n, 100, 1000, fixed))).toEqual([100, 200, 400, 1000]);
  });

  it("subjects carry only the priority and the kind", () => {
    const names = new LaneNames("tx");
    expect(names.subject("requested", 1)).toBe("tx.emergency.dispatch.p1.requested");
    expect(names.subject("status", 3)).toBe("tx.emergency.status.p3");
    expect(names.parse("tx.emergency.dispatch.p2.cancelled")).toEqual({ topic: "cancelled", priority: 2 });
    expect(names.parse("tx.emergency.status.p9")).toBeUndefined();
    expect(new LaneNames("").stream).toBe("EMERGENCY");
  });
});

describe("priority scheduler", () => {
  it("runs P1 before P2 before P3, one item per key at a time", async () => {
    const order: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const scheduler = new PriorityScheduler<{ priority: 1 | 2 | 3; key: string; label: string }>(1, async (item) => {
      order.push(item.label);
      if (item.label === "first") await gate;
    });
    scheduler.push({ priority: 3, key: "a", label: "first" });
    await new Promise((resolve) => setImmediate(resolve));
    scheduler.push({ priority: 3, key: "b", label: "p3" });
    scheduler.push({ priority: 2, key: "c", label: "p2" });
    scheduler.push({ priority: 1, key: "d", label: "p1" });
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual(["first", "p1", "p2", "p3"]);
  });

  it("lower priority waits while more urgent work is said to be on its way", async () => {
    const order: string[] = [];
    let pendingP1 = true;
    const scheduler = new PriorityScheduler<{ priority: 1 | 2 | 3; key: string; label: string }>(
      1,
      async (item) => {
        order.push(item.label);
      },
      async () => pendingP1,
    );
    scheduler.push({ priority: 3, key: "a", label: "p3" });
    await new Promise((resolve) => setTimeout(resolve, 30));
    scheduler.push({ priority: 1, key: "b", label: "p1" });
    pendingP1 = false;
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(order).toEqual(["p1", "p3"]);
  });
});

describe("in-process lane (the embedded default's stand-in for JetStream)", () => {
  it("dedupes message ids, redelivers a failed delivery, hands P1 first", async () => {
    const lane = new InProcessLane(createLogger("silent"));
    const publishOrder = [
      ["requested", 3, "e3"],
      ["requested", 2, "e2"],
      ["requested", 1, "e1"],
      ["requested", 1, "e1"],
    ] as const;
    for (const [topic, priority, id] of publishOrder) await lane.publish(topic, priority, id, new Uint8Array([1]));
    const seen: string[] = [];
    let failOnce = true;
    const consumer = await lane.consume({
      durable: "d",
      group: "dispatch",
      workers: 1,
      retryDelayMs: () => 5,
      handler: async (delivery) => {
        seen.push(`${delivery.msgId}#${delivery.deliveryCount}`);
        if (delivery.msgId === "e2" && failOnce) {
          failOnce = false;
          throw new Error("try again");
        }
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual(["e1#1", "e2#1", "e3#1", "e2#2"]);
    await consumer.stop();
    await lane.close();
  });
});
