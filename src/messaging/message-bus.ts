import type { NatsConnection } from "@nats-io/transport-node";

/** Stops a subscription; calling it twice is harmless. */
export type Unsubscribe = () => void;

/** Receives one message's payload; errors it throws are logged by the bus, not propagated. */
export type MessageHandler = (data: Uint8Array) => void;

/**
 * Fire-and-forget messaging between replicas of this service (core NATS semantics:
 * at most once, no storage). Callers must treat a message as a hint that can be
 * lost, and keep the truth in the database.
 */
export interface MessageBus {
  /** Which implementation this is, for the start-up log and tests. */
  readonly kind: "nats" | "in-process";
  /**
   * The NATS connection, for parts that need more than publish/subscribe (JetStream
   * for emergencies, issue #5); undefined for the in-process stand-in. Owned by the
   * bus: do not close or drain it.
   */
  readonly nats: NatsConnection | undefined;
  /** Sends `data` on `subject`; never throws (a closed or disconnected bus drops or buffers it). */
  publish(subject: string, data: Uint8Array): void;
  /** Calls `handler` for every message on `subject` (exact subject, no wildcards needed here). */
  subscribe(subject: string, handler: MessageHandler): Unsubscribe;
  /** Delivers what was published, then closes (NATS: drain). */
  close(): Promise<void>;
}
