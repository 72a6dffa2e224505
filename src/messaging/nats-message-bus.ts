import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../observability/logger.ts";
import type { MessageBus, MessageHandler, Unsubscribe } from "./message-bus.ts";
import { natsTlsOptions } from "./nats-tls.ts";

/** How the NATS connection behaves (NATS_* variables; see notification-config.ts). */
export interface NatsSettings {
  /** `nats://host:4222`; may carry credentials, so it is never logged. */
  readonly url: string;
  /** Client name shown by the server's monitoring, e.g. `patient-service`. */
  readonly name: string;
  /** How long to wait for the first connection before start-up fails. */
  readonly connectTimeoutMs: number;
  /** Pause between reconnect attempts; the client keeps trying forever. */
  readonly reconnectWaitMs: number;
}

/**
 * Core NATS behind the MessageBus interface: one connection per process, opened at
 * start-up (start-up fails when NATS cannot be reached, rather than running deaf),
 * reconnecting forever when it drops (subscriptions are restored by the client;
 * messages published while disconnected are buffered by it up to its limit, and
 * anything lost is recovered by the consumers' periodic catch-up), and drained at
 * shutdown so what was published leaves before the socket closes.
 */
export class NatsMessageBus implements MessageBus {
  readonly kind = "nats";
  readonly nats: NatsConnection;
  readonly #logger: Logger;
  #closing: Promise<void> | undefined;

  private constructor(connection: NatsConnection, logger: Logger) {
    this.nats = connection;
    this.#logger = logger;
    void this.#watchStatus();
  }

  /** Connects; rejects (without the URL in the message) when the server cannot be reached. */
  static async open(settings: NatsSettings, logger: Logger): Promise<NatsMessageBus> {
    let connection: NatsConnection;
    try {
      connection = await connect({
        ...natsTlsOptions(settings.url),
        servers: settings.url,
        name: settings.name,
        timeout: settings.connectTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: settings.reconnectWaitMs,
        waitOnFirstConnect: false,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new Error(`NATS is not reachable at NATS_URL (${typeof code === "string" ? code : "connection failed"})`);
    }
    return new NatsMessageBus(connection, logger);
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.#closing !== undefined || this.nats.isClosed()) return;
    try {
      this.nats.publish(subject, data);
    } catch (error) {
      // Only when the connection is closing or the payload is too large; a hint is lost, not data.
      this.#logger.warn({ err: { type: (error as Error).name }, subject }, "a NATS publish was dropped");
    }
  }

  subscribe(subject: string, handler: MessageHandler): Unsubscribe {
    const subscription = this.nats.subscribe(subject, {
      callback: (error, message) => {
        if (error !== null) {
          this.#logger.warn({ err: { type: error.name }, subject }, "a NATS subscription reported an error");
          return;
        }
        try {
          handler(message.data);
        } catch (handlerError) {
          this.#logger.warn({ err: handlerError, subject }, "a message handler failed");
        }
      },
    });
    return () => {
      if (!subscription.isClosed()) subscription.unsubscribe();
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.nats.isClosed()
      ? Promise.resolve()
      : this.nats.drain().catch((error: unknown) => {
          this.#logger.warn({ err: { type: (error as Error).name } }, "NATS did not drain cleanly");
        });
    return this.#closing;
  }

  /** Logs connection changes (without server addresses' credentials) so an outage is visible. */
  async #watchStatus(): Promise<void> {
    for await (const status of this.nats.status()) {
      switch (status.type) {
        case "disconnect":
          this.#logger.warn("NATS disconnected; reconnecting");
          break;
        case "reconnect":
          this.#logger.info("NATS reconnected");
          break;
        case "error":
          this.#logger.warn({ err: { type: "NatsServerError" } }, "NATS server reported an error");
          break;
        case "slowConsumer":
          this.#logger.warn("NATS slow consumer: messages were dropped");
          break;
        default:
          break;
      }
    }
  }
}
