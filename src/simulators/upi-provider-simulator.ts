import type { Clock } from "../shared/clock.ts";
import {
  type CollectStatus,
  type FailureCode,
  signatureHeader,
  signBody,
  type WireCollect,
  type WireEvent,
  type WireRefund,
  type WireTransaction,
} from "../billing/upi-wire.ts";
import type { SeededRandom } from "./seeded-random.ts";

/** A refusal of the simulated provider's API: an HTTP status and an error code. */
export class UpiApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

interface Step {
  readonly atMs: number;
  /** The payer's own action when steps take no time (tests): only a tick makes it happen, never a status read. */
  readonly onTick?: boolean;
  readonly status: CollectStatus;
  readonly failureCode?: FailureCode;
}

interface SimCollect {
  collect: WireCollect;
  readonly callbackUrl: string;
  readonly steps: Step[];
}

interface Outgoing {
  readonly url: string;
  readonly event: WireEvent;
  attempts: number;
}

/** Options of the simulated provider. */
export interface UpiSimulatorOptions {
  readonly clock: Clock;
  readonly random: SeededRandom;
  /** Signs callbacks. */
  readonly webhookSecret: Buffer;
  /** How long each step of a successful collect takes (approval, settlement); 0 in tests. */
  readonly stepMs: number;
  /** How long after the expiry a `late@` collect succeeds anyway. */
  readonly lateSuccessAfterMs?: number;
}

/**
 * A UPI payment provider, in memory, with the behaviours of a real collect flow chosen
 * by the payer's VPA (the part before `@`, any handle):
 *
 * - `fail@…`: declined by the payer; `poor@…`: insufficient funds;
 * - `invalid@…`: refused at once (the VPA does not exist);
 * - `timeout@…`: never approved, EXPIRED at the expiry;
 * - `late@…`: EXPIRED at the expiry, then SUCCEEDED anyway a minute later (the bank
 *   settled after all: a real and nasty case);
 * - anything else (`success@sim`, `asha@okaxis`): AUTHORIZED, then SUCCEEDED.
 *
 * Time is the injected clock: `tick()` applies every step that is due, queues one
 * signed callback per change, and delivers the queue to each collect's callback URL in
 * order (a failed delivery stays queued and is retried on the next tick, as providers
 * do). Status reads apply due steps too, so polling sees what callbacks would say.
 * Tests drive it: `holdCallbacks()` keeps callbacks queued, `releaseCallbacks()`
 * delivers them (reversed, twice), `redeliver()` sends an old one again.
 */
export class UpiProviderSimulator {
  readonly #o: UpiSimulatorOptions;
  readonly #collects = new Map<string, SimCollect>();
  readonly #byMerchantReference = new Map<string, string>();
  readonly #refunds = new Map<string, WireRefund>();
  readonly #refundByMerchantId = new Map<string, string>();
  readonly #outbox: Outgoing[] = [];
  readonly #sent = new Map<string, Outgoing>();
  #held = false;
  #delivering: Promise<void> = Promise.resolve();
  /**
   * Test control of the API's availability: `down` answers 503 without doing anything;
   * `lose-answers` does the work and then answers 503, as when a response is lost.
   */
  outage: "down" | "lose-answers" | undefined;

  constructor(options: UpiSimulatorOptions) {
    this.#o = options;
  }

  /** Starts a collect request; the same merchant reference returns the same collect (idempotency). */
  createCollect(input: {
    merchantReference: string;
    amountMinor: string;
    currency: string;
    vpa: string;
    expireAfterSeconds: number;
    callbackUrl: string;
  }): WireCollect {
    const known = this.#collects.get(this.#byMerchantReference.get(input.merchantReference) ?? "");
    if (known !== undefined) return known.collect;
    if (!/^[A-Za-z0-9.\-_]{2,256}@[A-Za-z][A-Za-z0-9]{1,64}$/.test(input.vpa)) {
      throw new UpiApiError(422, "INVALID_VPA", "The VPA is malformed.");
    }
    if (!/^[1-9]\d{0,15}$/.test(input.amountMinor) || !/^[A-Z]{3}$/.test(input.currency)) {
      throw new UpiApiError(400, "INVALID_AMOUNT", "The amount or currency is invalid.");
    }
    const handle = input.vpa.split("@")[0]?.toLowerCase() ?? "";
    if (handle === "invalid") throw new UpiApiError(422, "INVALID_VPA", "No such VPA.");
    const now = this.#o.clock.now().getTime();
    const expireAt = now + input.expireAfterSeconds * 1000;
    const reference = `col_${this.#o.random.id(20)}`;
    const collect: WireCollect = {
      reference,
      merchantReference: input.merchantReference,
      amountMinor: input.amountMinor,
      currency: input.currency,
      vpa: input.vpa,
      status: "PENDING",
      createdAt: iso(now),
      expireAt: iso(expireAt),
      updatedAt: iso(now),
    };
    this.#collects.set(reference, {
      collect,
      callbackUrl: input.callbackUrl,
      steps: this.#plan(handle, now, expireAt),
    });
    this.#byMerchantReference.set(input.merchantReference, reference);
    return collect;
  }

  /** A collect as of now (due steps applied). */
  getCollect(reference: string): WireCollect {
    const sim = this.#collects.get(reference) ?? this.#collects.get(this.#byMerchantReference.get(reference) ?? "");
    if (sim === undefined) throw new UpiApiError(404, "NOT_FOUND", "No such collect.");
    this.#advance(sim);
    return sim.collect;
  }

  /** Refunds (part of) a settled collect; the same merchant refund id returns the same refund. Settles at once. */
  refund(input: { merchantRefundId: string; collectReference: string; amountMinor: string; currency: string }) {
    const known = this.#refundByMerchantId.get(input.merchantRefundId);
    if (known !== undefined) return this.#refunds.get(known) as WireRefund;
    const collect = this.getCollect(input.collectReference);
    if (collect.status !== "SUCCEEDED")
      throw new UpiApiError(409, "NOT_SETTLED", "Only a settled collect is refunded.");
    const refunded = [...this.#refunds.values()]
      .filter((r) => r.collectReference === collect.reference && r.status !== "FAILED")
      .reduce((sum, r) => sum + BigInt(r.amountMinor), 0n);
    if (input.currency !== collect.currency || refunded + BigInt(input.amountMinor) > BigInt(collect.amountMinor)) {
      throw new UpiApiError(409, "REFUND_EXCEEDS_COLLECT", "The refund is more than what remains of the collect.");
    }
    const now = iso(this.#o.clock.now().getTime());
    const refund: WireRefund = {
      reference: `rfd_${this.#o.random.id(20)}`,
      merchantRefundId: input.merchantRefundId,
      collectReference: collect.reference,
      amountMinor: input.amountMinor,
      currency: input.currency,
      status: "SUCCEEDED",
      createdAt: now,
      updatedAt: now,
    };
    this.#refunds.set(refund.reference, refund);
    this.#refundByMerchantId.set(input.merchantRefundId, refund.reference);
    const sim = this.#collects.get(collect.reference) as SimCollect;
    this.#queue(sim.callbackUrl, { type: "refund.succeeded", refund });
    return refund;
  }

  /** The transactions report: every collect and refund changed in [from, to). */
  transactions(fromMs: number, toMs: number): WireTransaction[] {
    for (const sim of this.#collects.values()) this.#advance(sim);
    const inWindow = (at: string) => Date.parse(at) >= fromMs && Date.parse(at) < toMs;
    return [
      ...[...this.#collects.values()]
        .map((sim) => sim.collect)
        .filter((c) => inWindow(c.createdAt))
        .map((c) => ({ kind: "collect" as const, ...pick(c, c.merchantReference), status: c.status })),
      ...[...this.#refunds.values()]
        .filter((r) => inWindow(r.createdAt))
        .map((r) => ({ kind: "refund" as const, ...pick(r, r.merchantRefundId), status: r.status })),
    ];
  }

  /** Applies every due step, then delivers queued callbacks (unless held). Resolves when delivered. */
  async tick(): Promise<void> {
    for (const sim of this.#collects.values()) this.#advance(sim, true);
    if (!this.#held) await this.#deliverQueued();
  }

  /** Keeps callbacks queued until `releaseCallbacks` (tests: duplicates, reordering). */
  holdCallbacks(): void {
    this.#held = true;
  }

  /** Delivers what was held, in reverse order and/or each twice, and stops holding. */
  async releaseCallbacks(options: { reverse?: boolean; duplicate?: boolean } = {}): Promise<void> {
    this.#held = false;
    await this.tickDue();
    const queued = this.#outbox.splice(0);
    const order = options.reverse ? queued.reverse() : queued;
    for (const item of order) {
      await this.#send(item);
      if (options.duplicate) await this.#send(item);
    }
  }

  /** Applies due steps without delivering (the queue still fills while held). */
  async tickDue(): Promise<void> {
    for (const sim of this.#collects.values()) this.#advance(sim, true);
  }

  /** Sends an already delivered callback again, byte for byte the same event. */
  async redeliver(eventId: string): Promise<number> {
    const sent = this.#sent.get(eventId);
    if (sent === undefined) throw new Error(`no callback ${eventId} was sent`);
    return this.#send(sent);
  }

  /** The callbacks sent so far, oldest first (tests look up event ids). */
  sentEvents(): WireEvent[] {
    return [...this.#sent.values()].map((item) => item.event);
  }

  /** Callbacks waiting for delivery. */
  queuedEvents(): WireEvent[] {
    return this.#outbox.map((item) => item.event);
  }

  #plan(handle: string, now: number, expireAt: number): Step[] {
    const step = this.#o.stepMs;
    const onTick = step === 0;
    switch (handle) {
      case "fail":
        return [{ atMs: now + step, onTick, status: "FAILED", failureCode: "DECLINED" }];
      case "poor":
        return [{ atMs: now + step, onTick, status: "FAILED", failureCode: "INSUFFICIENT_FUNDS" }];
      case "timeout":
        return [{ atMs: expireAt, status: "EXPIRED", failureCode: "TIMEOUT" }];
      case "late":
        return [
          { atMs: expireAt, status: "EXPIRED", failureCode: "TIMEOUT" },
          { atMs: expireAt + (this.#o.lateSuccessAfterMs ?? 60_000), status: "SUCCEEDED" },
        ];
      default:
        return [
          { atMs: now + step, onTick, status: "AUTHORIZED" },
          { atMs: now + 2 * step, onTick, status: "SUCCEEDED" },
        ];
    }
  }

  #advance(sim: SimCollect, byTick = false): void {
    const now = this.#o.clock.now().getTime();
    const due = (step: Step | undefined) => step !== undefined && step.atMs <= now && (byTick || !step.onTick);
    while (due(sim.steps[0])) {
      const step = sim.steps.shift() as Step;
      const { failureCode: _, ...rest } = sim.collect;
      sim.collect = {
        ...rest,
        status: step.status,
        ...(step.failureCode === undefined ? {} : { failureCode: step.failureCode }),
        ...(step.status === "SUCCEEDED" ? { rrn: String(400000000000 + this.#o.random.int(99999999999)) } : {}),
        updatedAt: iso(Math.max(step.atMs, Date.parse(sim.collect.updatedAt))),
      };
      const type = `collect.${step.status.toLowerCase()}` as WireEvent["type"];
      this.#queue(sim.callbackUrl, { type, collect: sim.collect });
    }
  }

  #queue(url: string, change: Pick<WireEvent, "type" | "collect" | "refund">): void {
    const event: WireEvent = {
      eventId: `evt_${this.#o.random.id(24)}`,
      occurredAt: iso(this.#o.clock.now().getTime()),
      ...change,
    };
    this.#outbox.push({ url, event, attempts: 0 });
  }

  /** Delivers the queue in order, one at a time; stops at the first failure (order is kept for the retry). */
  #deliverQueued(): Promise<void> {
    this.#delivering = this.#delivering.then(async () => {
      while (!this.#held && this.#outbox.length > 0) {
        const item = this.#outbox[0] as Outgoing;
        const status = await this.#send(item);
        if (status < 200 || status >= 300) return;
        this.#outbox.shift();
      }
    });
    return this.#delivering;
  }

  async #send(item: Outgoing): Promise<number> {
    item.attempts++;
    this.#sent.set(item.event.eventId, item);
    if (item.url === "") return 204;
    const body = JSON.stringify(item.event);
    const unix = Math.floor(this.#o.clock.now().getTime() / 1000);
    try {
      const response = await fetch(item.url, {
        method: "POST",
        headers: { "content-type": "application/json", [signatureHeader]: signBody(this.#o.webhookSecret, unix, body) },
        body,
        signal: AbortSignal.timeout(5000),
      });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function pick(item: WireCollect | WireRefund, merchantReference: string) {
  return {
    reference: item.reference,
    merchantReference,
    amountMinor: item.amountMinor,
    currency: item.currency,
    updatedAt: item.updatedAt,
  };
}
