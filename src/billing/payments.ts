import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { SecretBox } from "../auth/auth-deps.ts";
import type { Logger } from "../observability/logger.ts";
import type { Patient } from "../patients/patient.ts";
import type { WriteAudit } from "../records/record-writes.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import { isUuid, uuidV7 } from "../shared/uuid-v7.ts";
import { paymentName } from "./billing-notices.ts";
import type { BillingStore, PaymentRow, RefundRow } from "./billing-store.ts";
import { amountDue } from "./invoice-rules.ts";
import { requireAmount, requireCurrency } from "./money.ts";
import type { PaymentEvents } from "./payment-events.ts";
import { type PaymentProvider, ProviderRefusal, ProviderUnavailable } from "./payment-provider.ts";
import { isOpen } from "./payment-states.ts";

/** Who asks for a payment or a refund. */
export interface BillingActor {
  /** `patients/…`, `admins/…`, `services/…`, or `system`. */
  readonly principal: string;
  readonly role: string;
}

/** What payments need. */
export interface PaymentDeps {
  readonly em: () => EntityManager;
  readonly store: BillingStore;
  readonly provider: PaymentProvider;
  readonly events: PaymentEvents;
  readonly patientOf: (patientId: string) => Promise<Patient>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Seals the payer's UPI id at rest. */
  readonly box: SecretBox;
  /** Where the provider sends callbacks (the service's webhook), known once the server listens. */
  readonly callbackUrl: () => string;
  readonly collectExpirySeconds: number;
}

/** A payment with its refunds, for mapping. */
export interface PaymentView {
  readonly payment: PaymentRow;
  /** The payer's UPI id, opened. */
  readonly upiId: string;
  readonly refunds: readonly RefundRow[];
}

/** The sealed UPI id of a payment, opened (bound to the payment: a value copied from another row does not open). */
export function openUpiId(box: SecretBox, payment: Pick<PaymentRow, "id" | "upi_id_sealed">): string {
  return box.open(payment.upi_id_sealed, `payment:${payment.id}`);
}

const refusal = (reason: string, message: string) => new DomainError("failed-precondition", reason, message);

/**
 * CreatePayment, GetPayment, ListPayments and RefundPayment. A payment row (PENDING,
 * with its audit entry) is committed before the provider hears of it, under the
 * invoice's row lock, and only for what the invoice still owes once the payments in
 * flight are counted: a double submit with the same request id returns the first
 * payment, and a second payment with another id cannot take more than remains. The
 * collect request is then sent with the payment id as its idempotency key, so a retry
 * after a lost answer never makes a second collect.
 */
export class Payments {
  readonly #d: PaymentDeps;

  constructor(deps: PaymentDeps) {
    this.#d = deps;
  }

  async create(
    patientId: string,
    input: { invoiceId: string; amount: { minor: bigint; currency: string } | undefined; upiId: string },
    requestId: string,
    payer: BillingActor,
    audit: WriteAudit | undefined,
  ): Promise<PaymentView> {
    const em = this.#d.em();
    const replayed = await this.#d.store.paymentByRequest(em, patientId, requestId);
    if (replayed !== undefined) return this.#view(replayed);
    if (input.amount !== undefined) {
      requireCurrency(input.amount.currency, "payment.amount.currency_code");
      requireAmount(input.amount.minor, "payment.amount.amount_minor");
    }
    if (!isUuid(input.invoiceId)) throw notFound("Invoice");
    const upiId = input.upiId || (await this.#d.patientOf(patientId)).upiId;
    if (upiId === "") throw invalidArgument("payment.upi_id", "is required: the profile has no UPI id");
    const created = await em.transactional(async (tx) => {
      const invoice = await this.#d.store.invoice(tx, patientId, input.invoiceId, true);
      if (invoice === undefined) throw notFound("Invoice");
      // A double submit that waited for the invoice's lock finds the first one's payment.
      const first = await this.#d.store.paymentByRequest(tx, patientId, requestId);
      if (first !== undefined) return first;
      if (input.amount !== undefined && input.amount.currency !== invoice.currency) {
        throw invalidArgument("payment.amount.currency_code", `must be the invoice's currency, ${invoice.currency}`);
      }
      if (invoice.state !== "open" && invoice.state !== "partially_paid") {
        throw refusal("INVOICE_NOT_PAYABLE", "This invoice is not open for payment.");
      }
      const due =
        amountDue(
          invoice.state,
          BigInt(invoice.patient_total_minor),
          BigInt(invoice.paid_minor),
          BigInt(invoice.refunded_minor),
        ) - (await this.#d.store.inFlightMinor(tx, invoice.id));
      if (due <= 0n) throw refusal("PAYMENT_IN_PROGRESS", "A payment of what remains is already in progress.");
      const amount = input.amount?.minor ?? due;
      if (amount > due) throw refusal("AMOUNT_EXCEEDS_DUE", "The amount is more than what remains to pay.");
      const now = this.#d.clock.now();
      const id = uuidV7(now.getTime());
      const inserted = await this.#d.store.insertPayment(tx, {
        id,
        patientId,
        invoiceId: invoice.id,
        requestId,
        amountMinor: amount,
        currency: invoice.currency,
        upiIdSealed: this.#d.box.seal(upiId, `payment:${id}`),
        provider: this.#d.provider.name,
        payer: payer.principal,
        payerRole: payer.role,
        expireAt: new Date(now.getTime() + this.#d.collectExpirySeconds * 1000),
        now,
      });
      // A concurrent double submit committed first: this one returns that payment.
      if (inserted === undefined) return (await this.#d.store.paymentByRequest(tx, patientId, requestId)) as PaymentRow;
      await audit?.within(tx, { resource: paymentName(inserted), reason: "PAYMENT_CREATED" });
      return inserted;
    });
    if (created.provider_reference === null && created.state === "pending") await this.send(created);
    return this.#view(await this.#reread(created));
  }

  /** A payment; an open one is polled at the provider first (and a lapsed one, for a late success). */
  async get(patientId: string, paymentId: string): Promise<PaymentView> {
    const row = await this.#find(patientId, paymentId);
    if (this.#worthPolling(row)) await this.poll(row);
    return this.#view(await this.#reread(row));
  }

  async list(
    patientId: string,
    invoiceId: string | undefined,
    after: { createdAt: string; id: string } | undefined,
    limit: number,
  ): Promise<PaymentView[]> {
    if (invoiceId !== undefined && !isUuid(invoiceId)) return [];
    const em = this.#d.em();
    const rows = await this.#d.store.payments(em, patientId, invoiceId, after, limit);
    const refunds = await this.#d.store.refundsOf(
      em,
      rows.map((row) => row.id),
    );
    return rows.map((payment) => ({
      payment,
      upiId: openUpiId(this.#d.box, payment),
      refunds: refunds.filter((refund) => refund.payment_id === payment.id),
    }));
  }

  /**
   * Refunds (part of) a SUCCEEDED payment the same way it came. The refund row (PENDING)
   * is committed first under the payment's lock, for at most what was paid less what
   * is refunded or being refunded; then the provider is asked with the refund id as its
   * idempotency key, and its answer is applied like any other provider event.
   */
  async refund(
    patientId: string,
    paymentId: string,
    amount: { minor: bigint; currency: string } | undefined,
    reason: string,
    requestId: string,
    requester: BillingActor,
    audit: WriteAudit | undefined,
  ): Promise<PaymentView> {
    const row = await this.#find(patientId, paymentId);
    if (amount !== undefined) {
      requireCurrency(amount.currency, "amount.currency_code");
      requireAmount(amount.minor, "amount.amount_minor");
      if (amount.currency !== row.currency) {
        throw invalidArgument("amount.currency_code", `must be the payment's currency, ${row.currency}`);
      }
    }
    const em = this.#d.em();
    const replayed = await this.#d.store.refundByRequest(em, row.id, requestId);
    const refund =
      replayed ??
      (await em.transactional(async (tx) => {
        const payment = (await this.#d.store.lockPayment(tx, row.id)) as PaymentRow;
        if (payment.state !== "succeeded")
          throw refusal("PAYMENT_NOT_REFUNDABLE", "Only a settled payment is refunded.");
        const remaining = BigInt(payment.amount_minor) - (await this.#d.store.refundsHeldMinor(tx, payment.id));
        const minor = amount?.minor ?? remaining;
        if (minor <= 0n || minor > remaining) {
          throw refusal("REFUND_EXCEEDS_PAYMENT", "The refund is more than what remains of the payment.");
        }
        const now = this.#d.clock.now();
        const inserted = await this.#d.store.insertRefund(tx, {
          id: uuidV7(now.getTime()),
          paymentId: payment.id,
          patientId,
          requestId,
          amountMinor: minor,
          reason,
          requestedBy: requester.principal,
          requestedByRole: requester.role,
          now,
        });
        if (inserted === undefined)
          return (await this.#d.store.refundByRequest(tx, payment.id, requestId)) as RefundRow;
        await audit?.within(tx, { resource: paymentName(payment), reason: "REFUND_REQUESTED" });
        return inserted;
      }));
    if (refund.state === "pending") await this.sendRefund(row, refund);
    return this.#view(await this.#reread(row));
  }

  /** Sends a PENDING payment's collect request (again: the provider answers a repeat with the same collect). */
  async send(payment: PaymentRow): Promise<void> {
    try {
      const collect = await this.#d.provider.createCollect({
        merchantReference: payment.id,
        amountMinor: BigInt(payment.amount_minor),
        currency: payment.currency,
        vpa: openUpiId(this.#d.box, payment),
        expireAfterSeconds: Math.max(
          60,
          Math.round((new Date(payment.expire_at).getTime() - this.#d.clock.now().getTime()) / 1000),
        ),
        callbackUrl: this.#d.callbackUrl(),
      });
      const { overpayment } = await this.#d.events.apply(
        { eventId: `create:${collect.reference}:${collect.status}`, occurredAt: collect.updatedAt, collect },
        "create",
      );
      if (overpayment !== undefined) await this.refundOverpayment(overpayment.payment, overpayment.amountMinor);
    } catch (error) {
      if (error instanceof ProviderRefusal) {
        const reason = error.code === "INVALID_VPA" ? "invalid_upi_id" : "provider_error";
        await this.#d.events.failUnsent(payment, reason, error.code);
        return;
      }
      // Unreachable or failed: the payment stays PENDING and the poller sends it again.
      if (!(error instanceof ProviderUnavailable)) throw error;
      this.#d.logger.warn({ paymentId: payment.id }, "collect request not sent; the poller retries");
    }
  }

  /** Asks the provider for an open payment's status and applies the answer. */
  async poll(payment: PaymentRow): Promise<void> {
    if (payment.provider_reference === null && payment.state === "pending") {
      await this.#pollUnsent(payment);
      return;
    }
    try {
      const collect = await this.#d.provider.getCollect(payment.provider_reference ?? payment.id);
      const { overpayment } = await this.#d.events.apply(
        { eventId: `poll:${collect.reference}:${collect.status}`, occurredAt: collect.updatedAt, collect },
        "poll",
      );
      if (overpayment !== undefined) await this.refundOverpayment(overpayment.payment, overpayment.amountMinor);
    } catch (error) {
      if (!(error instanceof ProviderUnavailable) && !(error instanceof ProviderRefusal)) throw error;
      this.#d.logger.warn({ paymentId: payment.id }, "payment status not polled");
    }
  }

  /**
   * A PENDING payment without a provider reference: its collect request failed, or its
   * answer was lost. The provider is asked by our id first (a collect it made is taken
   * up from there); one it never made is sent again, or, once past its expiry, ends
   * EXPIRED here: the payer never saw it, so no money can have moved.
   */
  async #pollUnsent(payment: PaymentRow): Promise<void> {
    try {
      const collect = await this.#d.provider.getCollect(payment.id);
      const { overpayment } = await this.#d.events.apply(
        { eventId: `poll:${collect.reference}:${collect.status}`, occurredAt: collect.updatedAt, collect },
        "poll",
      );
      if (overpayment !== undefined) await this.refundOverpayment(overpayment.payment, overpayment.amountMinor);
      return;
    } catch (error) {
      if (error instanceof ProviderUnavailable) return;
      if (!(error instanceof ProviderRefusal)) throw error;
    }
    if (this.#d.clock.now().getTime() < new Date(payment.expire_at).getTime()) {
      await this.send(payment);
      return;
    }
    await this.#d.events.expireUnsent(payment);
  }

  /** Applies a callback; refunds an overpayment it caused. */
  async applyCallback(event: Parameters<PaymentEvents["apply"]>[0]): Promise<string> {
    const { outcome, overpayment } = await this.#d.events.apply(event, "callback");
    if (overpayment !== undefined) await this.refundOverpayment(overpayment.payment, overpayment.amountMinor);
    return outcome;
  }

  /**
   * A success on an invoice that was paid meanwhile (a late success after a timeout,
   * when the patient had paid again): the excess goes back at once. The refund's
   * request id is derived from the payment, so doing this twice refunds once.
   */
  async refundOverpayment(payment: PaymentRow, amountMinor: bigint): Promise<void> {
    const requestId = derivedRequestId("overpayment", payment.id);
    await this.refund(
      payment.patient_id,
      payment.id,
      { minor: amountMinor, currency: payment.currency },
      "overpayment: the invoice was already paid",
      requestId,
      { principal: "system", role: "system" },
      undefined,
    ).catch((error: unknown) => {
      this.#d.logger.error({ paymentId: payment.id, err: { type: (error as Error).name } }, "overpayment not refunded");
    });
  }

  async sendRefund(payment: PaymentRow, refund: RefundRow): Promise<void> {
    try {
      const answer = await this.#d.provider.refund({
        merchantRefundId: refund.id,
        collectReference: payment.provider_reference ?? payment.id,
        amountMinor: BigInt(refund.amount_minor),
        currency: payment.currency,
      });
      await this.#d.events.apply(
        { eventId: `create:${answer.reference}:${answer.status}`, occurredAt: answer.updatedAt, refund: answer },
        "create",
      );
    } catch (error) {
      if (error instanceof ProviderRefusal) {
        await this.#d.events.apply(
          {
            eventId: `create:${refund.id}:refused`,
            occurredAt: this.#d.clock.now(),
            refund: {
              reference: `refused-${refund.id}`,
              merchantRefundId: refund.id,
              collectReference: payment.provider_reference ?? "",
              amountMinor: BigInt(refund.amount_minor),
              currency: payment.currency,
              status: "failed",
              updatedAt: this.#d.clock.now(),
            },
          },
          "create",
        );
        return;
      }
      if (!(error instanceof ProviderUnavailable)) throw error;
      this.#d.logger.warn({ refundId: refund.id }, "refund not sent; retry RefundPayment with the same request id");
    }
  }

  #worthPolling(row: PaymentRow): boolean {
    if (isOpen(row.state)) return true;
    // A lapsed collect may still succeed late (for a day, at most).
    return row.state === "expired" && this.#d.clock.now().getTime() - new Date(row.expire_at).getTime() < 86_400_000;
  }

  async #find(patientId: string, paymentId: string): Promise<PaymentRow> {
    if (!isUuid(paymentId)) throw notFound("Payment");
    const row = await this.#d.store.payment(this.#d.em(), patientId, paymentId);
    if (row === undefined) throw notFound("Payment");
    return row;
  }

  async #reread(row: PaymentRow): Promise<PaymentRow> {
    return (await this.#d.store.payment(this.#d.em(), row.patient_id, row.id)) ?? row;
  }

  async #view(payment: PaymentRow): Promise<PaymentView> {
    return {
      payment,
      upiId: openUpiId(this.#d.box, payment),
      refunds: await this.#d.store.refundsOf(this.#d.em(), [payment.id]),
    };
  }
}

/** A UUID derived from `parts` (SHA-256, version 8): the one request id of a refund the system makes for them. */
export function derivedRequestId(...parts: string[]): string {
  const hex = createHash("sha256").update(parts.join(":")).digest("hex");
  const v = `${hex.slice(0, 12)}8${hex.slice(13, 16)}${((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 32)}`;
  return `${v.slice(0, 8)}-${v.slice(8, 12)}-${v.slice(12, 16)}-${v.slice(16, 20)}-${v.slice(20)}`;
}
