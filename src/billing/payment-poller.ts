import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import type { BillingStore } from "./billing-store.ts";
import type { CancellationRefunds } from "./cancellation-refunds.ts";
import type { Invoicing } from "./invoicing.ts";
import type { Payments } from "./payments.ts";

/** What the background work needs. */
export interface BillingWorkerDeps {
  readonly em: () => EntityManager;
  readonly store: BillingStore;
  readonly payments: Payments;
  readonly invoicing: Invoicing;
  readonly cancellations: CancellationRefunds;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly pollIntervalMs: number;
  readonly pollAfterSeconds: number;
  readonly invoiceIntervalMs: number;
}

/**
 * Background work of billing, on every replica: open payments that had no news for
 * PAYMENT_POLL_AFTER_SECONDS are polled at the provider (a lost callback costs
 * latency, not correctness; a collect whose first send failed is sent again), and
 * every BILLING_INVOICE_INTERVAL_MS the charges of cancelled consultations are voided
 * or refunded and pending charges roll up into invoices. Replicas
 * polling the same payment at once are harmless: the ledger and guarded UPDATEs apply
 * each status once.
 */
export class BillingWorker {
  readonly #timers: NodeJS.Timeout[] = [];
  #running: Promise<void> = Promise.resolve();
  readonly deps: BillingWorkerDeps;

  constructor(deps: BillingWorkerDeps) {
    this.deps = deps;
  }

  start(): void {
    const every = (ms: number, work: () => Promise<void>) => {
      if (ms <= 0) return;
      const timer = setInterval(() => {
        this.#running = this.#running.then(work).catch((error: unknown) => {
          this.deps.logger.warn({ err: { type: (error as Error).name } }, "billing background round failed");
        });
      }, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.deps.pollIntervalMs, () => this.pollOnce());
    every(this.deps.invoiceIntervalMs, () => this.invoiceOnce());
  }

  /** One polling round (tests call it after moving the clock). */
  async pollOnce(): Promise<void> {
    const quietSince = new Date(this.deps.clock.now().getTime() - this.deps.pollAfterSeconds * 1000);
    const em = this.deps.em();
    for (const payment of await this.deps.store.paymentsToPoll(em, quietSince, 100)) {
      await this.deps.payments.poll(payment);
    }
    // Refunds whose request to the provider failed: the same refund id again (the provider refunds once).
    for (const refund of await this.deps.store.refundsToRetry(em, quietSince, 100)) {
      const payment = await this.deps.store.payment(em, refund.patient_id, refund.payment_id);
      if (payment !== undefined) await this.deps.payments.sendRefund(payment, refund);
    }
  }

  /** Refunds or voids the charges of cancelled consultations, then rolls pending charges into invoices. */
  async invoiceOnce(): Promise<void> {
    await this.deps.cancellations.sweep();
    await this.deps.invoicing.rollUpAll();
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    await this.#running;
  }
}
