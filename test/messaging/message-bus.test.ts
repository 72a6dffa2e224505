import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { InProcessMessageBus } from "../../src/messaging/in-process-message-bus.ts";
import type { MessageBus } from "../../src/messaging/message-bus.ts";
import { NatsMessageBus } from "../../src/messaging/nats-message-bus.ts";
import { openMessageBus } from "../../src/messaging/open-message-bus.ts";
import { createLogger } from "../../src/observability/logger.ts";

const logger = createLogger("silent");
const natsUrl = process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222";
const settings = { name: "patient-service-test", connectTimeoutMs: 2000, reconnectWaitMs: 100 };
const opened: MessageBus[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((bus) => bus.close()));
});

function received(bus: MessageBus, subject: string): Uint8Array[] {
  const messages: Uint8Array[] = [];
  bus.subscribe(subject, (data) => messages.push(data));
  return messages;
}

async function until(probe: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("the message bus", () => {
  it("NATS: what one connection publishes reaches every subscriber on another, and a drained close delivers it", async () => {
    const [a, b] = await Promise.all([
      openMessageBus({ ...settings, url: natsUrl }, logger),
      openMessageBus({ ...settings, url: natsUrl }, logger),
    ]);
    opened.push(a, b);
    expect(a.kind).toBe("nats");
    expect(a.nats?.isClosed()).toBe(false);
    const subject = `test.messaging.${randomUUID()}`;
    const onB = received(b, subject);
    await b.nats?.flush(); // the subscription is registered on the server
    a.publish(subject, new Uint8Array([1, 2, 3]));
    await a.close(); // drain: the message leaves before the socket closes
    await until(() => onB.length === 1);
    expect([...(onB[0] ?? [])]).toEqual([1, 2, 3]);
    expect(a.nats?.isClosed()).toBe(true);
    a.publish(subject, new Uint8Array([4])); // after close: dropped, not thrown
  });

  it("NATS: an unsubscribed handler gets nothing more", async () => {
    const bus = await openMessageBus({ ...settings, url: natsUrl }, logger);
    opened.push(bus);
    const subject = `test.messaging.${randomUUID()}`;
    const messages: Uint8Array[] = [];
    const stop = bus.subscribe(subject, (data) => messages.push(data));
    bus.publish(subject, new Uint8Array([1]));
    await until(() => messages.length === 1);
    stop();
    bus.publish(subject, new Uint8Array([2]));
    await bus.nats?.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(messages).toHaveLength(1);
  });

  it("NATS: start-up fails with a message that does not repeat the URL when the server cannot be reached", async () => {
    await expect(
      NatsMessageBus.open({ ...settings, url: "nats://user:secret@127.0.0.1:1", connectTimeoutMs: 500 }, logger),
    ).rejects.toThrow(/^NATS is not reachable at NATS_URL/);
    await expect(
      NatsMessageBus.open({ ...settings, url: "nats://user:secret@127.0.0.1:1", connectTimeoutMs: 500 }, logger),
    ).rejects.not.toThrow(/secret/);
  });

  it("in-process (no NATS_URL): delivers asynchronously to every subscriber, nothing after close", async () => {
    const bus = await openMessageBus({ ...settings, url: undefined }, logger);
    expect(bus).toBeInstanceOf(InProcessMessageBus);
    expect(bus.nats).toBeUndefined();
    const first = received(bus, "s");
    const second = received(bus, "s");
    bus.publish("s", new Uint8Array([9]));
    expect(first).toHaveLength(0); // not inside publish
    await until(() => first.length === 1 && second.length === 1);
    await bus.close();
    bus.publish("s", new Uint8Array([10]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(first).toHaveLength(1);
  });
});
