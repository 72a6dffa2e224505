import { clone, create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type Channel,
  type Delivery,
  Delivery_State,
  DeliverySchema,
  Priority,
  type Recipient,
} from "../../gen/telemed/notification/v1/notification_pb.js";
import type { Clock } from "../shared/clock.ts";
import type { SeededRandom } from "./seeded-random.ts";
import { notFound } from "./simulator-errors.ts";

/** A message the simulated provider "sent": what a test reads to find, say, a verification code. */
export interface SentMessage {
  /** `deliveries/{delivery}`. */
  readonly delivery: string;
  readonly channel: Channel;
  /** The email address, phone number or push token. */
  readonly address: string;
  readonly subject: string;
  readonly textBody: string;
  readonly htmlBody: string;
  readonly linkUri: string;
  readonly category: string;
  readonly priority: Priority;
  readonly sentAt: Date;
}

interface Waiter {
  readonly address: string;
  readonly after: number;
  readonly resolve: (message: SentMessage) => void;
}

/**
 * The Notification Service in memory: accepts deliveries once per idempotency key,
 * "sends" them at once (or when `send_after_time` has passed on the injected clock,
 * checked whenever deliveries are read) and keeps every sent message per address, so
 * tests can read what a patient was told. Addresses can be made to fail.
 */
export class NotificationSimulator {
  readonly #clock: Clock;
  readonly #random: SeededRandom;
  readonly #deliveries = new Map<string, Delivery>();
  readonly #byKey = new Map<string, Delivery>();
  /** Sent messages by normalised address, oldest first. */
  readonly #sentTo = new Map<string, SentMessage[]>();
  /** Deliveries still QUEUED, in acceptance order: what `#sendDue` looks at (not every delivery ever made). */
  readonly #queued = new Set<Delivery>();
  readonly #failing = new Map<string, string>();
  readonly #waiters = new Set<Waiter>();
  #sequence = 0;

  constructor(options: { clock: Clock; random: SeededRandom }) {
    this.#clock = options.clock;
    this.#random = options.random;
  }

  /**
   * Accepts a delivery (already validated against the contract). The same
   * idempotency key returns the first delivery unchanged and sends nothing.
   */
  deliver(request: Delivery, idempotencyKey: string): Delivery {
    const first = this.#byKey.get(idempotencyKey);
    if (first) return clone(DeliverySchema, first);
    this.#sequence += 1;
    const now = timestampFromMs(this.#now());
    // Ids sort by acceptance, so "newest first" is the reverse name order.
    const delivery = create(DeliverySchema, {
      ...clone(DeliverySchema, request),
      name: `deliveries/${String(this.#sequence).padStart(10, "0")}${this.#random.id(10)}`,
      idempotencyKey,
      priority: request.priority === Priority.UNSPECIFIED ? Priority.NORMAL : request.priority,
      state: Delivery_State.QUEUED,
      attemptCount: 0,
      lastError: "",
      providerMessageId: "",
      createTime: now,
      updateTime: now,
    });
    this.#deliveries.set(delivery.name, delivery);
    this.#byKey.set(idempotencyKey, delivery);
    this.#queued.add(delivery);
    this.#sendDue();
    return clone(DeliverySchema, delivery);
  }

  /** A delivery by name; NOT_FOUND when there is none. */
  get(name: string): Delivery {
    this.#sendDue();
    const delivery = this.#deliveries.get(name);
    if (!delivery) throw notFound("Delivery", name);
    return clone(DeliverySchema, delivery);
  }

  /** Every delivery, newest first. */
  list(): Delivery[] {
    this.#sendDue();
    return [...this.#deliveries.values()].reverse().map((d) => clone(DeliverySchema, d));
  }

  /** Messages sent to an address (email case-insensitively), oldest first. */
  messagesTo(address: string): SentMessage[] {
    this.#sendDue();
    const wanted = normalise(address);
    return [...(this.#sentTo.get(wanted) ?? [])];
  }

  /** The last message sent to an address, for example the email carrying a verification code. */
  lastMessageTo(address: string): SentMessage | undefined {
    return this.messagesTo(address).at(-1);
  }

  /**
   * Waits for a message to an address beyond the `after` messages already there (by
   * default: the next one), for flows that send in the background. Rejects after `timeoutMs`.
   */
  waitForMessageTo(address: string, options: { after?: number; timeoutMs?: number } = {}): Promise<SentMessage> {
    const after = options.after ?? this.messagesTo(address).length;
    const ready = this.messagesTo(address)[after];
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        address: normalise(address),
        after,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no message to ${address} within ${options.timeoutMs ?? 5000} ms`));
      }, options.timeoutMs ?? 5000);
      this.#waiters.add(waiter);
    });
  }

  /** Test driver: the provider refuses messages to this address (FAILED with `error`); undefined heals it. */
  failDeliveriesTo(address: string, error: string | undefined = "recipient refused by the provider"): void {
    if (error === undefined) this.#failing.delete(normalise(address));
    else this.#failing.set(normalise(address), error);
  }

  /** Sends every QUEUED delivery whose send_after_time has come. */
  #sendDue(): void {
    const now = this.#now();
    for (const delivery of this.#queued) {
      if (delivery.sendAfterTime && timestampMs(delivery.sendAfterTime) > now) continue;
      this.#queued.delete(delivery);
      this.#send(delivery, now);
    }
  }

  #send(delivery: Delivery, now: number): void {
    const address = normalise(addressOf(delivery.recipient));
    delivery.attemptCount += 1;
    delivery.updateTime = timestampFromMs(now);
    const refusal = this.#failing.get(address);
    if (refusal !== undefined) {
      delivery.state = Delivery_State.FAILED;
      delivery.lastError = refusal;
      return;
    }
    delivery.state = Delivery_State.DELIVERED;
    delivery.providerMessageId = `sim-${this.#random.id(20)}`;
    const content = delivery.content;
    const message: SentMessage = {
      delivery: delivery.name,
      channel: delivery.channel,
      address,
      subject: content?.subject ?? "",
      textBody: content?.textBody ?? "",
      htmlBody: content?.htmlBody ?? "",
      linkUri: content?.linkUri ?? "",
      category: delivery.category,
      priority: delivery.priority,
      sentAt: new Date(now),
    };
    const sent = this.#sentTo.get(address) ?? [];
    sent.push(message);
    this.#sentTo.set(address, sent);
    for (const waiter of this.#waiters) {
      if (waiter.address === address && sent.length > waiter.after) {
        this.#waiters.delete(waiter);
        waiter.resolve(sent[waiter.after] as SentMessage);
      }
    }
  }

  #now(): number {
    return this.#clock.now().getTime();
  }
}

/** The recipient's address on its channel. */
export function addressOf(recipient: Recipient | undefined): string {
  const address = recipient?.address;
  return address?.case === undefined ? "" : address.value;
}

/** Email addresses compare case-insensitively; phone numbers and tokens as they are. */
function normalise(address: string): string {
  return address.includes("@") ? address.toLowerCase() : address;
}
