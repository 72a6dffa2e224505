import type { Logger } from "../observability/logger.ts";
import type { MessageBus, MessageHandler, Unsubscribe } from "./message-bus.ts";

/**
 * The embedded default (no NATS_URL): one process, so "every replica" is this one.
 * Delivery is asynchronous, like NATS, so code that works here does not silently
 * depend on a handler running inside `publish`.
 */
export class InProcessMessageBus implements MessageBus {
  readonly kind = "in-process";
  readonly nats = undefined;
  readonly #handlers = new Map<string, Set<MessageHandler>>();
  readonly #logger: Logger;
  #closed = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.#closed) return;
    const handlers = this.#handlers.get(subject);
    if (handlers === undefined || handlers.size === 0) return;
    const copy = Uint8Array.from(data);
    setImmediate(() => {
      for (const handler of handlers) {
        try {
          handler(copy);
        } catch (error) {
          this.#logger.warn({ err: error, subject }, "a message handler failed");
        }
      }
    });
  }

  subscribe(subject: string, handler: MessageHandler): Unsubscribe {
    let handlers = this.#handlers.get(subject);
    if (handlers === undefined) {
      handlers = new Set();
      this.#handlers.set(subject, handlers);
    }
    // A wrapper per subscription, so the same function subscribed twice gets two deliveries.
    const own: MessageHandler = (data) => handler(data);
    handlers.add(own);
    return () => {
      handlers.delete(own);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
  }
}
