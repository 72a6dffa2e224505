import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import type { BillingStore, ChargeRow } from "./billing-store.ts";
import { linesFromJson } from "./invoice-rules.ts";
import { derivedRequestId, type Payments } from "./payments.ts";

/**
 * Refunds for cancelled consultations, by the system: a charge whose consultation was
 * cancelled after it was charged (a booking a sibling charged in advance) is voided if
 * still pending; if invoiced, the line's patient share is refunded from the invoice's
 * settled payments, newest first, the same way each came (the provider refunds the
 * collect), and an unpaid invoice of that one line is voided. Each refund's request id
 * is derived from the charge and the payment, so a sweep that runs twice, on two
 * replicas or after a crash, refunds once.
 */
export class CancellationRefunds {
  readonly #d: { em: () => EntityManager; store: BillingStore; payments: Payments; clock: Clock; logger: Logger };

  constructor(deps: {
    em: () => EntityManager;
    store: BillingStore;
    payments: Payments;
    clock: Clock;
    logger: Logger;
  }) {
    this.#d = deps;
  }

  /** One round over the charges of cancelled consultations. */
  async sweep(): Promise<void> {
    for (const charge of await this.#d.store.chargesOfCancelledConsultations(this.#d.em(), 100)) {
      await this.#settle(charge).catch((error: unknown) => {
        this.#d.logger.warn(
          { chargeId: charge.id, err: { type: (error as Error).name } },
          "cancelled charge not settled",
        );
      });
    }
  }

  async #settle(charge: ChargeRow): Promise<void> {
    const { store } = this.#d;
    const em = this.#d.em();
    const now = this.#d.clock.now();
    if (charge.state === "pending" || charge.invoice_id === null) {
      await store.voidCharge(em, charge.id, "pending", now);
      return;
    }
    const invoice = await store.invoice(em, charge.patient_id, charge.invoice_id);
    if (invoice === undefined) return;
    const lines = linesFromJson(invoice.lines);
    const share = lines.find((line) => line.chargeId === charge.id)?.patientShareMinor ?? 0n;
    const settled = (await store.payments(em, charge.patient_id, invoice.id, undefined, 100)).filter(
      (payment) => payment.state === "succeeded",
    );
    // What this charge's refunds already took (a sweep cut short, or run twice).
    let left = share;
    for (const payment of settled) {
      const earlier = await store.refundByRequest(em, payment.id, derivedRequestId("cancelled", charge.id, payment.id));
      if (earlier !== undefined && earlier.state !== "failed") left -= BigInt(earlier.amount_minor);
    }
    for (const payment of settled) {
      if (left <= 0n) break;
      const requestId = derivedRequestId("cancelled", charge.id, payment.id);
      if ((await store.refundByRequest(em, payment.id, requestId)) !== undefined) continue;
      const refundable = BigInt(payment.amount_minor) - (await store.refundsHeldMinor(em, payment.id));
      const take = refundable < left ? refundable : left;
      if (take <= 0n) continue;
      await this.#d.payments.refund(
        charge.patient_id,
        payment.id,
        { minor: take, currency: payment.currency },
        "consultation cancelled",
        requestId,
        { principal: "system", role: "system" },
        undefined,
      );
      left -= take;
    }
    if (settled.length === 0 && lines.length === 1) await store.voidInvoice(em, invoice, now);
    await store.voidCharge(em, charge.id, "invoiced", now);
  }
}
