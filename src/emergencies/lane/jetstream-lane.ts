import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Logger } from "../../observability/logger.ts";
import type { Priority } from "../emergency.ts";
import {
  type ConsumeOptions,
  type EmergencyLane,
  groupOf,
  keyOfMsgId,
  type LaneConsumer,
  type LaneDelivery,
  LaneNames,
  type LaneTopic,
  priorities,
} from "./emergency-lane.ts";
import { PriorityScheduler } from "./priority-scheduler.ts";
import { natsTlsOptions } from "../../messaging/nats-tls.ts";

/** How the JetStream lane is set up. */
export interface JetStreamLaneSettings {
  /** `nats://host:4222`; may carry credentials, so it is never logged. */
  readonly url: string;
  /** Connection name on the server, e.g. `patient-service-emergencies`. */
  readonly name: string;
  readonly prefix: string;
  readonly publishTimeoutMs: number;
  /** 1 here; 3 in production (README: with `sync_interval: always` on every server). */
  readonly replicas: number;
  readonly duplicateWindowSeconds: number;
  /** How long a delivered message may stay unacknowledged before JetStream redelivers it. */
  readonly ackWaitMs?: number;
}

const ackWaitDefaultMs = 30_000;

/**
 * The lane on NATS JetStream, over a connection of its own: emergency traffic never
 * queues behind the routine fan-out on the shared connection. One stream with file
 * storage holds both directions; each priority has its own durable pull consumer with
 * explicit acks, and a PriorityScheduler takes P1 before P2 before P3.
 */
export class JetStreamLane implements EmergencyLane {
  readonly kind = "jetstream";
  readonly names: LaneNames;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #settings: JetStreamLaneSettings;
  readonly #logger: Logger;
  readonly #consumers = new Set<LaneConsumer>();
  #streamReady: Promise<void> | undefined;

  private constructor(nc: NatsConnection, settings: JetStreamLaneSettings, logger: Logger) {
    this.#nc = nc;
    this.#js = jetstream(nc, { timeout: settings.publishTimeoutMs });
    this.#settings = settings;
    this.#logger = logger;
    this.names = new LaneNames(settings.prefix);
  }

  /** Connects (retrying forever in the background once connected) and makes sure the stream exists. */
  static async open(settings: JetStreamLaneSettings, logger: Logger): Promise<JetStreamLane> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        ...natsTlsOptions(settings.url),
        servers: settings.url,
        name: settings.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: 5_000,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new Error(
        `NATS is not reachable for the emergency lane (${typeof code === "string" ? code : "connection failed"})`,
      );
    }
    const lane = new JetStreamLane(nc, settings, logger);
    await lane.ensureStream().catch(async (error: unknown) => {
      await nc.close();
      throw error;
    });
    return lane;
  }

  /** Creates or updates the stream; called again after a failure (a server that lost its store). */
  ensureStream(): Promise<void> {
    this.#streamReady ??= this.#createStream().catch((error: unknown) => {
      this.#streamReady = undefined;
      throw error;
    });
    return this.#streamReady;
  }

  async publish(topic: LaneTopic, priority: Priority, msgId: string, data: Uint8Array): Promise<void> {
    await this.ensureStream();
    try {
      await this.#js.publish(this.names.subject(topic, priority), data, {
        msgID: msgId,
        timeout: this.#settings.publishTimeoutMs,
      });
    } catch (error) {
      // A server that restarted without its store answers "no responders": set the stream up again.
      this.#streamReady = undefined;
      throw error;
    }
  }

  async consume(options: ConsumeOptions): Promise<LaneConsumer> {
    await this.ensureStream();
    const jsm = await this.#manager();
    const consumers = new Map<Priority, Consumer>();
    for (const priority of priorities) {
      const durable = this.names.durable(options.durable, priority);
      await jsm.consumers.add(this.names.stream, {
        durable_name: durable,
        filter_subject: this.names.filter(options.group, priority),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(this.#settings.ackWaitMs ?? ackWaitDefaultMs),
        max_deliver: -1,
      });
      consumers.set(priority, await this.#js.consumers.get(this.names.stream, durable));
    }
    const scheduler = new PriorityScheduler<{ priority: Priority; key: string; msg: JsMsg }>(
      options.workers,
      (item) => this.#handle(options, item.priority, item.msg),
      async (priority) => {
        for (const higher of priorities) {
          if (higher >= priority) return false;
          const info = await (consumers.get(higher) as Consumer).info(false);
          if (info.num_pending > 0) return true;
        }
        return false;
      },
    );
    let stopped = false;
    const stopping: Array<() => void> = [];
    const loops = priorities.map(async (priority) => {
      while (!stopped) {
        try {
          const messages = await (consumers.get(priority) as Consumer).consume({ max_messages: 32 });
          stopping.push(() => messages.stop());
          for await (const msg of messages) {
            const msgId = msg.headers?.get("Nats-Msg-Id") ?? "";
            scheduler.push({ priority, key: keyOfMsgId(msgId), msg });
          }
        } catch (error) {
          if (stopped) return;
          this.#logger.warn(
            { err: { type: (error as Error).name }, priority },
            "emergency consumer failed; restarting",
          );
        }
        if (!stopped) await new Promise((resolve) => setTimeout(resolve, 500));
      }
    });
    const consumer: LaneConsumer = {
      stop: async () => {
        stopped = true;
        for (const stop of stopping) stop();
        await scheduler.stop();
        await Promise.allSettled(loops);
        this.#consumers.delete(consumer);
      },
    };
    this.#consumers.add(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.stop()));
    if (!this.#nc.isClosed()) await this.#nc.drain().catch(() => undefined);
  }

  /** Deletes the stream (tests clean up after themselves). */
  async deleteStream(): Promise<void> {
    const jsm = await this.#manager();
    await jsm.streams.delete(this.names.stream).catch(() => false);
  }

  async #handle(options: ConsumeOptions, priority: Priority, msg: JsMsg): Promise<void> {
    const parsed = this.names.parse(msg.subject);
    if (parsed === undefined || groupOf(parsed.topic) !== options.group) {
      // Not ours to understand (a future message kind): acknowledge rather than loop on it.
      msg.term();
      return;
    }
    const delivery: LaneDelivery = {
      topic: parsed.topic,
      priority,
      msgId: msg.headers?.get("Nats-Msg-Id") ?? "",
      data: msg.data,
      deliveryCount: msg.info.deliveryCount,
    };
    try {
      await options.handler(delivery);
    } catch {
      msg.nak(options.retryDelayMs(msg.info.deliveryCount));
      return;
    }
    // Confirmed, so a lost ack shows up here; the handlers are idempotent if it is redelivered anyway.
    await msg.ackAck().catch(() => false);
  }

  #manager(): Promise<JetStreamManager> {
    return jetstreamManager(this.#nc, { timeout: this.#settings.publishTimeoutMs });
  }

  async #createStream(): Promise<void> {
    const jsm = await this.#manager();
    const config = {
      name: this.names.stream,
      subjects: this.names.streamSubjects,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: this.#settings.replicas,
      duplicate_window: nanos(this.#settings.duplicateWindowSeconds * 1000),
      max_age: nanos(30 * 86_400_000),
    };
    try {
      await jsm.streams.info(this.names.stream);
      await jsm.streams.update(this.names.stream, config);
    } catch (error) {
      if ((error as { name?: string }).name !== "StreamNotFoundError" && !/not found/i.test(String(error))) throw error;
      await jsm.streams.add(config);
    }
  }
}
