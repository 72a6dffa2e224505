import type { Logger } from "../../observability/logger.ts";
import type { Priority } from "../emergency.ts";
import {
  type ConsumeOptions,
  type EmergencyLane,
  groupOf,
  keyOfMsgId,
  type LaneConsumer,
  type LaneDelivery,
  type LaneGroup,
  type LaneTopic,
} from "./emergency-lane.ts";
import { PriorityScheduler } from "./priority-scheduler.ts";

interface Stored {
  readonly topic: LaneTopic;
  readonly priority: Priority;
  readonly msgId: string;
  readonly data: Uint8Array;
}

interface Durable {
  readonly group: LaneGroup;
  /** Index of the next stored message this durable has not been handed. */
  next: number;
  readonly attach: Set<(message: Stored, deliveryCount: number) => void>;
}

/**
 * The embedded default's lane (no NATS_URL): one process holds both the Patient
 * Service and the Paramedic Service simulator, so the "stream" is an array here. It
 * keeps JetStream's promises that the code relies on: `publish` resolves once stored,
 * a message id seen before is dropped, each durable consumer sees every message of its
 * group once in order, a rejected delivery comes back after the retry delay, and P1 is
 * handed out before P2 before P3. Nothing survives a restart: the outbox in PostgreSQL
 * is what makes the embedded mode lose nothing (unsent rows are published again).
 */
export class InProcessLane implements EmergencyLane {
  readonly kind = "in-process";
  readonly #messages: Stored[] = [];
  readonly #seen = new Set<string>();
  readonly #durables = new Map<string, Durable>();
  readonly #consumers = new Set<LaneConsumer>();
  readonly #logger: Logger;
  #closed = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async publish(topic: LaneTopic, priority: Priority, msgId: string, data: Uint8Array): Promise<void> {
    if (this.#closed) throw new Error("the emergency lane is closed");
    if (this.#seen.has(msgId)) return;
    this.#seen.add(msgId);
    const message: Stored = { topic, priority, msgId, data: Uint8Array.from(data) };
    this.#messages.push(message);
    // Asynchronous like a broker: nothing runs inside the publisher's call.
    setImmediate(() => {
      for (const durable of this.#durables.values()) this.#feed(durable);
    });
  }

  async consume(options: ConsumeOptions): Promise<LaneConsumer> {
    let durable = this.#durables.get(options.durable);
    if (durable === undefined) {
      durable = { group: options.group, next: 0, attach: new Set() };
      this.#durables.set(options.durable, durable);
    }
    let stopped = false;
    const timers = new Set<NodeJS.Timeout>();
    const scheduler = new PriorityScheduler<{ priority: Priority; key: string; message: Stored; count: number }>(
      options.workers,
      async ({ message, count }) => {
        const delivery: LaneDelivery = { ...message, deliveryCount: count };
        try {
          await options.handler(delivery);
        } catch {
          if (stopped) return;
          const timer = setTimeout(() => {
            timers.delete(timer);
            if (!stopped)
              scheduler.push({ priority: message.priority, key: keyOfMsgId(message.msgId), message, count: count + 1 });
          }, options.retryDelayMs(count));
          timers.add(timer);
        }
      },
    );
    const receive = (message: Stored, count: number) =>
      scheduler.push({ priority: message.priority, key: keyOfMsgId(message.msgId), message, count });
    durable.attach.add(receive);
    const own = durable;
    setImmediate(() => this.#feed(own));
    const consumer: LaneConsumer = {
      stop: async () => {
        stopped = true;
        own.attach.delete(receive);
        for (const timer of timers) clearTimeout(timer);
        await scheduler.stop();
        this.#consumers.delete(consumer);
      },
    };
    this.#consumers.add(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.stop()));
  }

  /** Hands a durable's new messages of its group to one of its attached consumers (round robin). */
  #feed(durable: Durable): void {
    const consumers = [...durable.attach];
    if (consumers.length === 0) return;
    let turn = 0;
    while (durable.next < this.#messages.length) {
      const message = this.#messages[durable.next] as Stored;
      durable.next += 1;
      if (groupOf(message.topic) !== durable.group) continue;
      try {
        (consumers[turn % consumers.length] as (message: Stored, count: number) => void)(message, 1);
      } catch (error) {
        this.#logger.warn({ err: error }, "an in-process emergency consumer failed");
      }
      turn += 1;
    }
  }
}
