import type { EntityManager } from "@mikro-orm/postgresql";
import type { AuditSink } from "../audit/call-audit.ts";
import type { Logger } from "../observability/logger.ts";
import type { AnnounceAfterCommit, Notifier } from "../notifications/notifier.ts";
import type { Clock } from "../shared/clock.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { type PaymentEvent, paymentNotice, providerEventAudit } from "./billing-notices.ts";
import type { BillingStore, PaymentRow } from "./billing-store.ts";
import { invoiceStateAfter } from "./invoice-rules.ts";
import type { ProviderCollect, ProviderEvent, ProviderRefund } from "./payment-provider.ts";
import { type PaymentStateName, paymentMoves } from "./payment-states.ts";

/** What applying one provider event did. */
export type EventOutcome = "applied" | "ignored" | "duplicate" | "unknown";

/** Work to do once an event's transaction committed: an overpayment to refund. */
export interface Overpayment {
  readonly payment: PaymentRow;
  readonly amountMinor: bigint;
}

/** What applying provider events needs. */
export interface PaymentEventDeps {
  readonly em: () => EntityManager;
  readonly store: BillingStore;
  readonly provider: string;
  readonly audit: Pick<AuditSink, "recordWithin">;
  readonly notifier: Notifier;
  readonly clock: Clock;
  readonly logger: Logger;
}

const eventOf: Partial<Record<PaymentStateName, PaymentEvent>> = {
  authorized: "PAYMENT_AUTHORIZED",
  succeeded: "PAYMENT_SUCCEEDED",
  failed: "PAYMENT_FAILED",
  expired: "PAYMENT_EXPIRED",
};

/**
 * Applies what the provider reports (callbacks, poll answers, create answers), each in
 * one transaction: the event goes into the ledger under its id first (a duplicate
 * inserts nothing and stops there), then the payment moves by the state machine with
 * a guarded UPDATE (a report older than the state held changes nothing), the invoice's
 * sums follow, and the audit entry and the patient's notification are written in the
 * same transaction. A success on an invoice that is already paid (a late success after
 * the patient paid again) is honoured and its excess handed back as an overpayment,
 * which the caller refunds the same way it came.
 */
export class PaymentEvents {
  readonly #d: PaymentEventDeps;

  constructor(deps: PaymentEventDeps) {
    this.#d = deps;
  }

  async apply(
    event: ProviderEvent,
    via: "callback" | "poll" | "create",
  ): Promise<{ outcome: EventOutcome; overpayment?: Overpayment }> {
    let announce: AnnounceAfterCommit | undefined;
    const result = await this.#d.em().transactional(async (tx) => {
      if (event.collect !== undefined) {
        const applied = await this.#applyCollect(tx, event, event.collect, via);
        announce = applied.announce;
        return applied;
      }
      if (event.refund !== undefined) {
        const applied = await this.#applyRefund(tx, event, event.refund, via);
        announce = applied.announce;
        return applied;
      }
      return { outcome: "unknown" as const };
    });
    announce?.();
    return result;
  }

  /** A collect the provider refused outright (an unknown VPA): the payment fails without a provider reference. */
  async failUnsent(payment: PaymentRow, reason: "invalid_upi_id" | "provider_error", code: string): Promise<void> {
    let announce: AnnounceAfterCommit | undefined;
    await this.#d.em().transactional(async (tx) => {
      const now = this.#d.clock.now();
      const moved = await this.#d.store.movePayment(tx, payment.id, "pending", "failed", {
        failureReason: reason,
        now,
      });
      if (moved === undefined) return;
      const invoice = await this.#d.store.invoice(tx, payment.patient_id, payment.invoice_id);
      const eventId = `create:${payment.id}:${code}`.slice(0, 128);
      await this.#d.audit.recordWithin(tx, [providerEventAudit(this.#d.provider, payment, "PAYMENT_FAILED", eventId)]);
      announce = await this.#d.notifier.recordWithin(tx, [
        paymentNotice(moved, invoice?.invoice_number ?? "", "failed"),
      ]);
    });
    announce?.();
  }

  /** A collect the provider never made, past its expiry: EXPIRED (timeout) without a provider reference. */
  async expireUnsent(payment: PaymentRow): Promise<void> {
    let announce: AnnounceAfterCommit | undefined;
    await this.#d.em().transactional(async (tx) => {
      const now = this.#d.clock.now();
      const moved = await this.#d.store.movePayment(tx, payment.id, "pending", "expired", {
        failureReason: "timeout",
        now,
      });
      if (moved === undefined) return;
      const invoice = await this.#d.store.invoice(tx, payment.patient_id, payment.invoice_id);
      const eventId = `local:${payment.id}:expired`;
      await this.#d.audit.recordWithin(tx, [providerEventAudit(this.#d.provider, payment, "PAYMENT_EXPIRED", eventId)]);
      announce = await this.#d.notifier.recordWithin(tx, [
        paymentNotice(moved, invoice?.invoice_number ?? "", "expired"),
      ]);
    });
    announce?.();
  }

  async #applyCollect(tx: EntityManager, event: ProviderEvent, collect: ProviderCollect, via: string) {
    const store = this.#d.store;
    const found =
      (await store.paymentByProviderReference(tx, this.#d.provider, collect.reference)) ??
      (isUuid(collect.merchantReference) ? await store.lockPayment(tx, collect.merchantReference) : undefined);
    const fresh = await this.#ledger(
      tx,
      event,
      collect.reference,
      found?.id ?? null,
      null,
      collect.amountMinor,
      collect.currency,
      via,
    );
    if (!fresh) return { outcome: "duplicate" as const };
    if (found === undefined) {
      this.#d.logger.warn({ eventId: event.eventId }, "provider event for an unknown payment");
      return this.#outcome(tx, event, "unknown");
    }
    const payment = (await store.lockPayment(tx, found.id)) as PaymentRow;
    if (payment.provider_reference === null) {
      await store.setProviderReference(tx, payment.id, collect.reference, collect.expireAt, this.#d.clock.now());
    }
    if (BigInt(payment.amount_minor) !== collect.amountMinor || payment.currency !== collect.currency) {
      // Never settle a different amount than asked: reconciliation reports it.
      this.#d.logger.error(
        { paymentId: payment.id, eventId: event.eventId },
        "provider amount differs from the payment",
      );
      return this.#outcome(tx, event, "ignored");
    }
    if (!paymentMoves(payment.state, collect.status)) return this.#outcome(tx, event, "ignored");
    const now = this.#d.clock.now();
    const moved = await store.movePayment(tx, payment.id, payment.state, collect.status, {
      failureReason:
        collect.status === "failed" || collect.status === "expired"
          ? (collect.failureReason ?? "provider_error")
          : null,
      ...(collect.status === "succeeded"
        ? {
            settledAt: now,
            receiptNumber: `RCT-${now.getUTCFullYear()}-${payment.id.replace(/-/g, "").slice(-10).toUpperCase()}`,
          }
        : {}),
      now,
    });
    if (moved === undefined) return this.#outcome(tx, event, "ignored");
    const invoice = await store.invoice(tx, payment.patient_id, payment.invoice_id, true);
    if (invoice === undefined) throw new Error("a payment's invoice is missing");
    let overpayment: Overpayment | undefined;
    if (collect.status === "succeeded") {
      const paid = BigInt(invoice.paid_minor) + collect.amountMinor;
      const refunded = BigInt(invoice.refunded_minor);
      const total = BigInt(invoice.patient_total_minor);
      const state = invoiceStateAfter(invoice.state, total, paid, refunded);
      await store.updateInvoiceSums(tx, invoice, { paid, refunded, state, paidAt: state === "paid" ? now : null, now });
      const excess = paid - refunded - total;
      if (excess > 0n)
        overpayment = { payment: moved, amountMinor: excess < collect.amountMinor ? excess : collect.amountMinor };
    }
    const audit = eventOf[collect.status];
    if (audit !== undefined) {
      await this.#d.audit.recordWithin(tx, [providerEventAudit(this.#d.provider, payment, audit, event.eventId)]);
    }
    let announce: AnnounceAfterCommit | undefined;
    if (collect.status === "succeeded" || collect.status === "failed" || collect.status === "expired") {
      announce = await this.#d.notifier.recordWithin(tx, [
        paymentNotice(moved, invoice.invoice_number, collect.status),
      ]);
    }
    await store.setEventOutcome(tx, this.#d.provider, event.eventId, "applied");
    return { outcome: "applied" as const, announce, overpayment };
  }

  async #applyRefund(tx: EntityManager, event: ProviderEvent, refund: ProviderRefund, via: string) {
    const store = this.#d.store;
    const refundId = isUuid(refund.merchantRefundId) ? refund.merchantRefundId : undefined;
    const row = refundId === undefined ? undefined : await store.lockRefund(tx, refundId);
    const fresh = await this.#ledger(
      tx,
      event,
      refund.reference,
      row?.payment_id ?? null,
      row?.id ?? null,
      refund.amountMinor,
      refund.currency,
      via,
    );
    if (!fresh) return { outcome: "duplicate" as const };
    if (row === undefined) return this.#outcome(tx, event, "unknown");
    if (row.state !== "pending" || refund.status === "pending" || BigInt(row.amount_minor) !== refund.amountMinor) {
      return this.#outcome(tx, event, "ignored");
    }
    const payment = (await store.lockPayment(tx, row.payment_id)) as PaymentRow;
    const now = this.#d.clock.now();
    const moved = await store.moveRefund(tx, row.id, refund.status, refund.reference, now);
    if (moved === undefined) return this.#outcome(tx, event, "ignored");
    let announce: AnnounceAfterCommit | undefined;
    if (refund.status === "succeeded") {
      await store.addPaymentRefunded(tx, payment.id, refund.amountMinor, now);
      const invoice = await store.invoice(tx, payment.patient_id, payment.invoice_id, true);
      if (invoice === undefined) throw new Error("a payment's invoice is missing");
      const paid = BigInt(invoice.paid_minor);
      const refunded = BigInt(invoice.refunded_minor) + refund.amountMinor;
      const state = invoiceStateAfter(invoice.state, BigInt(invoice.patient_total_minor), paid, refunded);
      await store.updateInvoiceSums(tx, invoice, { paid, refunded, state, paidAt: null, now });
      announce = await this.#d.notifier.recordWithin(tx, [
        paymentNotice(payment, invoice.invoice_number, "refunded", moved),
      ]);
    }
    const audit: PaymentEvent = refund.status === "succeeded" ? "PAYMENT_REFUNDED" : "REFUND_FAILED";
    await this.#d.audit.recordWithin(tx, [providerEventAudit(this.#d.provider, payment, audit, event.eventId)]);
    await store.setEventOutcome(tx, this.#d.provider, event.eventId, "applied");
    return { outcome: "applied" as const, announce };
  }

  #ledger(
    tx: EntityManager,
    event: ProviderEvent,
    reference: string,
    paymentId: string | null,
    refundId: string | null,
    amountMinor: bigint,
    currency: string,
    via: string,
  ): Promise<boolean> {
    const kind =
      event.collect !== undefined ? `collect.${event.collect.status}` : `refund.${event.refund?.status ?? ""}`;
    return this.#d.store.insertEvent(tx, {
      provider: this.#d.provider,
      eventId: event.eventId,
      kind,
      providerReference: reference,
      paymentId,
      refundId,
      amountMinor,
      currency: currency.slice(0, 3),
      via: via as "callback",
      occurredAt: event.occurredAt,
      now: this.#d.clock.now(),
    });
  }

  async #outcome(tx: EntityManager, event: ProviderEvent, outcome: "ignored" | "unknown") {
    await this.#d.store.setEventOutcome(tx, this.#d.provider, event.eventId, "ignored");
    return { outcome, announce: undefined };
  }
}
