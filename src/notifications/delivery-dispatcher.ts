import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import { Channel, Delivery_State, Priority } from "../../gen/telemed/notification/v1/notification_pb.js";
import type { NotificationDeliveryService } from "../../gen/telemed/notification/v1/notification_service_pb.js";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import type { CategoryName, ChannelName, DeliveryState, PriorityName } from "./notification.ts";

/** Where a patient can be reached on a channel; undefined when they cannot (no phone, no device). */
export interface RecipientAddresses {
  addressOf(patientId: string, channel: ChannelName): Promise<string | undefined>;
}

/** Tuning of the dispatcher (notification-config.ts). */
export interface DispatcherSettings {
  readonly intervalMs: number;
  readonly batch: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  /** How long a claimed delivery stays invisible to other replicas before it is retried. */
  readonly leaseMs: number;
}

interface ClaimedRow {
  readonly notification_id: string;
  readonly channel: ChannelName;
  readonly recipient_id: string;
  readonly attempts: number;
  readonly provider_delivery: string | null;
  readonly category: CategoryName;
  readonly priority: PriorityName;
  readonly title: string;
  readonly body: string;
  readonly expire_at: string | Date | null;
}

/** The outcome of one attempt: the state to store, and when to look again (undefined: never). */
interface Outcome {
  readonly state: DeliveryState;
  readonly dueAt: Date | undefined;
  readonly providerDelivery?: string;
  readonly lastError?: string;
}

const channelToSibling: Record<ChannelName, Channel> = { push: Channel.PUSH, email: Channel.EMAIL, sms: Channel.SMS };
const priorityToSibling: Record<PriorityName, Priority> = {
  normal: Priority.NORMAL,
  high: Priority.HIGH,
  critical: Priority.CRITICAL,
};
/** Errors a later attempt may not get; anything else is retried with backoff. */
const permanent = new Set([Code.InvalidArgument, Code.FailedPrecondition, Code.PermissionDenied, Code.NotFound]);
const maxBackoffMs = 15 * 60_000;

/**
 * Hands queued channel deliveries to the Notification Service. Every replica runs
 * one; they share the queue (`notification_deliveries`) safely: a round claims due
 * rows with `for update skip locked` and pushes their `due_at` one lease ahead in the
 * same statement, so no other replica sees them, and the network calls happen after
 * that commit, without a transaction open. A replica that dies mid-send leaves rows
 * that come due again after the lease; the idempotency key
 * (`notification:{id}:{channel}`) makes the Notification Service answer the retry
 * with the first delivery instead of sending twice.
 */
export class DeliveryDispatcher {
  readonly #em: () => EntityManager;
  readonly #client: Client<typeof NotificationDeliveryService>;
  readonly #addresses: RecipientAddresses;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: DispatcherSettings;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(deps: {
    em: () => EntityManager;
    client: Client<typeof NotificationDeliveryService>;
    addresses: RecipientAddresses;
    clock: Clock;
    logger: Logger;
    settings: DispatcherSettings;
  }) {
    this.#em = deps.em;
    this.#client = deps.client;
    this.#addresses = deps.addresses;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#settings = deps.settings;
  }

  /** Starts the periodic rounds. */
  start(): void {
    this.#timer ??= setInterval(() => this.kick(), this.#settings.intervalMs);
  }

  /** Runs a round soon (after a commit queued deliveries); rounds never overlap on one replica. */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#round()
      .catch((error: unknown) => this.#logger.warn({ err: error }, "a delivery round failed; retrying next round"))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** Stops the rounds and waits for the one in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  async #round(): Promise<void> {
    for (;;) {
      const claimed = await this.#claim();
      const outcomes = await Promise.all(claimed.map((row) => this.#outcomeOf(row)));
      await this.#record(claimed, outcomes);
      if (claimed.length < this.#settings.batch || this.#stopped) return;
    }
  }

  async #claim(): Promise<ClaimedRow[]> {
    const now = this.#clock.now();
    const leaseEnd = new Date(now.getTime() + this.#settings.leaseMs);
    return this.#em().execute<ClaimedRow[]>(
      `with due as (select "notification_id", "channel" from "notification_deliveries" where "due_at" <= ? ` +
        `order by "due_at" limit ? for update skip locked), ` +
        `claimed as (update "notification_deliveries" d set "due_at" = ?, "attempts" = d."attempts" + 1 from due ` +
        `where d."notification_id" = due."notification_id" and d."channel" = due."channel" ` +
        `returning d."notification_id", d."channel", d."recipient_id", d."attempts", d."provider_delivery") ` +
        `select c.*, n."category", n."priority", n."title", n."body", n."expire_at" ` +
        `from claimed c join "notifications" n on n."id" = c."notification_id"`,
      [now.toISOString(), this.#settings.batch, leaseEnd.toISOString()],
      "all",
    );
  }

  async #outcomeOf(row: ClaimedRow): Promise<Outcome> {
    try {
      return await this.#attempt(row);
    } catch (error) {
      return this.#afterError(row, error);
    }
  }

  /** The round's outcomes in one statement (each row keeps its lease until then). */
  async #record(rows: readonly ClaimedRow[], outcomes: readonly Outcome[]): Promise<void> {
    if (rows.length === 0) return;
    const params: (string | null)[] = [this.#clock.now().toISOString()];
    rows.forEach((row, i) => {
      const outcome = outcomes[i] as Outcome;
      params.push(
        row.notification_id,
        row.channel,
        outcome.state,
        outcome.dueAt?.toISOString() ?? null,
        outcome.providerDelivery ?? null,
        outcome.lastError ?? null,
      );
    });
    await this.#em().execute(
      `update "notification_deliveries" d set "state" = v."state", "due_at" = v."due_at"::timestamptz, ` +
        `"provider_delivery" = coalesce(v."provider_delivery", d."provider_delivery"), "last_error" = v."last_error", ` +
        `"updated_at" = ?::timestamptz from (values ${rows.map(() => "(?::uuid, ?, ?, ?, ?, ?)").join(", ")}) ` +
        `as v("notification_id", "channel", "state", "due_at", "provider_delivery", "last_error") ` +
        `where d."notification_id" = v."notification_id" and d."channel" = v."channel"`,
      params,
      "run",
    );
  }

  async #attempt(row: ClaimedRow): Promise<Outcome> {
    const now = this.#clock.now();
    if (row.provider_delivery !== null) {
      const { delivery } = await this.#client.getDelivery({ name: row.provider_delivery });
      return this.#fromProvider(row, delivery?.state, row.provider_delivery);
    }
    if (row.expire_at !== null && new Date(row.expire_at) <= now) {
      return { state: "suppressed", dueAt: undefined, lastError: "EXPIRED" };
    }
    const address = await this.#addresses.addressOf(row.recipient_id, row.channel);
    if (address === undefined) return { state: "suppressed", dueAt: undefined, lastError: "NO_ADDRESS" };
    const recipient =
      row.channel === "email"
        ? { case: "email" as const, value: address }
        : row.channel === "sms"
          ? { case: "phone" as const, value: address }
          : { case: "pushToken" as const, value: address };
    const { delivery } = await this.#client.deliver({
      idempotencyKey: `notification:${row.notification_id}:${row.channel}`,
      delivery: {
        channel: channelToSibling[row.channel],
        recipient: { address: recipient },
        content: {
          subject: row.title,
          // An SMS is one text: the title leads it.
          textBody: row.channel === "sms" ? `${row.title}: ${row.body}` : row.body,
        },
        priority: priorityToSibling[row.priority],
        category: row.category,
      },
    });
    return this.#fromProvider(row, delivery?.state, delivery?.name);
  }

  /** The provider's answer as our state; QUEUED and SENT are confirmed on a later round. */
  #fromProvider(row: ClaimedRow, state: Delivery_State | undefined, name: string | undefined): Outcome {
    if (state === Delivery_State.DELIVERED) return { state: "delivered", dueAt: undefined, providerDelivery: name };
    if (state === Delivery_State.FAILED) {
      return { state: "failed", dueAt: undefined, providerDelivery: name, lastError: "PROVIDER_FAILED" };
    }
    // Accepted but not confirmed: look again later, a bounded number of times.
    const dueAt = row.attempts >= this.#settings.maxAttempts ? undefined : this.#retryAt(row.attempts);
    return { state: "pending", dueAt, providerDelivery: name };
  }

  #afterError(row: ClaimedRow, error: unknown): Outcome {
    const code = error instanceof ConnectError ? error.code : Code.Unknown;
    const lastError = (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
    // Logged by code only: the error's message may echo an address.
    this.#logger.warn({ channel: row.channel, attempt: row.attempts, code: lastError }, "a channel delivery failed");
    if (permanent.has(code) || row.attempts >= this.#settings.maxAttempts) {
      return { state: "failed", dueAt: undefined, lastError };
    }
    return { state: "pending", dueAt: this.#retryAt(row.attempts), lastError };
  }

  #retryAt(attempts: number): Date {
    const delay = Math.min(this.#settings.retryBaseMs * 2 ** Math.max(0, attempts - 1), maxBackoffMs);
    return new Date(this.#clock.now().getTime() + delay);
  }
}
