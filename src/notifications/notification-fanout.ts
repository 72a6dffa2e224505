import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  NotificationsCommittedSchema,
  type NotificationStoreHead,
} from "../../gen/telemed/patient/v1/notification_events_pb.js";
import type { MessageBus, Unsubscribe } from "../messaging/message-bus.ts";
import type { Logger } from "../observability/logger.ts";
import { DomainError } from "../shared/domain-errors.ts";

/**
 * The one subject replicas poke each other on. Fixed, so it names nobody; the payload
 * carries recipient ids and sequences only (notification_events.proto).
 */
export const notificationsCommittedSubject = "telemed.patient.v1.notifications.committed";

/** A recipient's store moved to `sequence`. */
export interface StoreHead {
  readonly recipientId: string;
  readonly sequence: number;
}

/** Stops watching; idempotent. */
export type Unwatch = () => void;

/**
 * Live fan-out: which streams on this replica watch which recipient, and the pokes
 * between replicas. A commit on any replica publishes the heads that moved; every
 * replica wakes its streams of those recipients, and each stream reads what is new
 * from the store. The poke is a hint (core NATS, at most once): streams also read
 * periodically, so a lost poke delays a notification, it never loses it.
 */
export class NotificationFanout {
  readonly #bus: MessageBus;
  readonly #logger: Logger;
  readonly #maxPerRecipient: number;
  readonly #watchers = new Map<string, Set<() => void>>();
  #unsubscribe: Unsubscribe | undefined;

  constructor(bus: MessageBus, logger: Logger, maxPerRecipient: number) {
    this.#bus = bus;
    this.#logger = logger;
    this.#maxPerRecipient = maxPerRecipient;
  }

  /** Starts listening to other replicas' pokes. */
  start(): void {
    this.#unsubscribe ??= this.#bus.subscribe(notificationsCommittedSubject, (data) => this.#received(data));
  }

  /** Stops listening; streams still open are left to end with the server. */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Tells every replica (this one at once) that these recipients have new notifications. */
  announce(heads: readonly StoreHead[]): void {
    if (heads.length === 0) return;
    for (const head of heads) this.#wake(head.recipientId);
    const message = create(NotificationsCommittedSchema, {
      heads: heads.map((head) => ({ recipientPatientId: head.recipientId, sequence: BigInt(head.sequence) })),
    });
    this.#bus.publish(notificationsCommittedSubject, toBinary(NotificationsCommittedSchema, message));
  }

  /**
   * Registers a stream of `recipientId`; `wake` runs whenever that recipient may have
   * something new. RESOURCE_EXHAUSTED beyond the per-patient limit on this replica,
   * so one patient's runaway client cannot hold every connection.
   */
  watch(recipientId: string, wake: () => void): Unwatch {
    let set = this.#watchers.get(recipientId);
    if (set === undefined) {
      set = new Set();
      this.#watchers.set(recipientId, set);
    }
    if (set.size >= this.#maxPerRecipient) {
      throw new DomainError(
        "resource-exhausted",
        "TOO_MANY_STREAMS",
        "Too many notification streams are open for this patient. Close one and retry.",
        { retryAfterSeconds: 5 },
      );
    }
    const own = () => wake();
    set.add(own);
    return () => {
      const current = this.#watchers.get(recipientId);
      current?.delete(own);
      if (current?.size === 0) this.#watchers.delete(recipientId);
    };
  }

  /** Streams open on this replica (for tests and metrics). */
  get openStreams(): number {
    let count = 0;
    for (const set of this.#watchers.values()) count += set.size;
    return count;
  }

  #received(data: Uint8Array): void {
    let heads: NotificationStoreHead[];
    try {
      heads = fromBinary(NotificationsCommittedSchema, data).heads;
    } catch {
      this.#logger.warn({ subject: notificationsCommittedSubject }, "an undecodable notification poke was ignored");
      return;
    }
    for (const head of heads) this.#wake(head.recipientPatientId);
  }

  #wake(recipientId: string): void {
    const set = this.#watchers.get(recipientId);
    if (set === undefined) return;
    for (const wake of set) wake();
  }
}
