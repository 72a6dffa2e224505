import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import {
  asRevocationNotice,
  type RevocationBus,
  type RevocationErrorHandler,
  type RevocationListener,
  RevocationListeners,
  type RevocationNotice,
  warnRevocationError,
} from "./revocation-bus.ts";

export const defaultRevocationChannel = "patient-service:revocations";

/** Options of the Redis bus. */
export interface RedisRevocationBusOptions {
  /** The connection to publish on; the caller owns it. The bus subscribes on a duplicate it owns. */
  readonly redis: Redis;
  /** Tests use a unique channel per run. */
  readonly channel?: string;
  /** Called with a listener's exception or an unreadable message. */
  readonly onError?: RevocationErrorHandler;
}

/** A notice on the wire, with the instance that sent it. */
interface Envelope {
  readonly origin: string;
  readonly notice: RevocationNotice;
}

/**
 * Revocation notices over Redis pub/sub between instances. A subscribed connection can
 * do nothing else, so the bus subscribes on its own duplicate of the given connection.
 * `publish` delivers to this instance's listeners synchronously, then publishes; other
 * instances get the notice as soon as Redis forwards it (and skip their own, by origin).
 * Pub/sub keeps nothing: an instance disconnected at that moment misses the notice
 * (ioredis resubscribes on reconnect), which the session cache's short lifetime covers.
 */
export class RedisRevocationBus implements RevocationBus {
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #origin = randomUUID();
  readonly #listeners: RevocationListeners;
  readonly #onError: RevocationErrorHandler;
  #closed = false;

  /** Opens a bus; resolves once its subscription is active, so no later notice is missed. */
  static async open(options: RedisRevocationBusOptions): Promise<RedisRevocationBus> {
    const bus = new RedisRevocationBus(options);
    try {
      await bus.#subscriber.subscribe(bus.#channel);
    } catch (error) {
      bus.#subscriber.disconnect();
      throw error;
    }
    return bus;
  }

  private constructor(options: RedisRevocationBusOptions) {
    this.#redis = options.redis;
    this.#channel = options.channel ?? defaultRevocationChannel;
    this.#onError = options.onError ?? warnRevocationError;
    this.#listeners = new RevocationListeners(options.onError);
    this.#subscriber = options.redis.duplicate();
    this.#subscriber.on("message", (channel: string, message: string) => {
      if (channel === this.#channel) this.#receive(message);
    });
  }

  async publish(notice: RevocationNotice): Promise<void> {
    if (this.#closed) throw new Error("revocation bus is closed");
    this.#listeners.deliver(notice);
    const envelope: Envelope = { origin: this.#origin, notice };
    await this.#redis.publish(this.#channel, JSON.stringify(envelope));
  }

  subscribe(listener: RevocationListener): () => void {
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    try {
      await this.#subscriber.quit();
    } catch {
      this.#subscriber.disconnect();
    }
  }

  #receive(message: string): void {
    if (this.#closed) return;
    let parsed: Partial<Envelope> | undefined;
    try {
      parsed = JSON.parse(message) as Partial<Envelope>;
    } catch {
      parsed = undefined;
    }
    if (parsed?.origin === this.#origin) return;
    const notice = asRevocationNotice(parsed?.notice);
    if (notice === undefined) {
      this.#onError(new Error(`unreadable revocation notice on ${this.#channel}`));
      return;
    }
    this.#listeners.deliver(notice);
  }
}
