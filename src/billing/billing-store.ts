import type { EntityManager } from "@mikro-orm/postgresql";
import type { PaymentRow, RefundRow } from "./billing-rows.ts";
import { InvoiceSql } from "./invoice-sql.ts";
import type { FailureReasonName, PaymentStateName, RefundStateName } from "./payment-states.ts";

export type { ChargeRow, InvoiceRow, PaymentRow, RefundRow } from "./billing-rows.ts";

/**
 * The SQL of the billing tables: charges and invoices (InvoiceSql), payments, refunds
 * and the ledger of the provider's events. Reads of one patient's rows always name the
 * patient; state changes are UPDATEs guarded by the state (or version) read.
 */
export class BillingStore extends InvoiceSql {
  // ---- payments

  /** Inserts a payment; undefined when the patient used the request id already. */
  async insertPayment(
    em: EntityManager,
    p: {
      id: string;
      patientId: string;
      invoiceId: string;
      requestId: string;
      amountMinor: bigint;
      currency: string;
      upiIdSealed: string;
      provider: string;
      payer: string;
      payerRole: string;
      expireAt: Date;
      now: Date;
    },
  ): Promise<PaymentRow | undefined> {
    const rows = await em.execute<PaymentRow[]>(
      `insert into "billing_payments" ("id", "patient_id", "invoice_id", "request_id", "amount_minor", "currency", ` +
        `"upi_id_sealed", "state", "failure_reason", "provider", "provider_reference", "refunded_minor", "payer", "payer_role", ` +
        `"receipt_number", "expire_at", "settled_at", "version", "created_at", "updated_at") ` +
        `values (?, ?, ?, ?, ?, ?, ?, 'pending', null, ?, null, 0, ?, ?, null, ?, null, 1, ?, ?) ` +
        `on conflict on constraint "billing_payments_request_unique" do nothing returning *`,
      [
        p.id,
        p.patientId,
        p.invoiceId,
        p.requestId,
        p.amountMinor.toString(),
        p.currency,
        p.upiIdSealed,
        p.provider,
        p.payer,
        p.payerRole,
        p.expireAt,
        p.now,
        p.now,
      ],
      "all",
    );
    return rows[0];
  }

  async paymentByRequest(em: EntityManager, patientId: string, requestId: string): Promise<PaymentRow | undefined> {
    const rows = await em.execute<PaymentRow[]>(
      `select * from "billing_payments" where "patient_id" = ? and "request_id" = ?`,
      [patientId, requestId],
      "all",
    );
    return rows[0];
  }

  async payment(em: EntityManager, patientId: string, paymentId: string): Promise<PaymentRow | undefined> {
    const rows = await em.execute<PaymentRow[]>(
      `select * from "billing_payments" where "patient_id" = ? and "id" = ?`,
      [patientId, paymentId],
      "all",
    );
    return rows[0];
  }

  /** A payment by id, locked for a state change (the provider's events name no patient). */
  async lockPayment(em: EntityManager, paymentId: string): Promise<PaymentRow | undefined> {
    const rows = await em.execute<PaymentRow[]>(
      `select * from "billing_payments" where "id" = ? for update`,
      [paymentId],
      "all",
    );
    return rows[0];
  }

  async paymentByProviderReference(em: EntityManager, provider: string, reference: string) {
    const rows = await em.execute<PaymentRow[]>(
      `select * from "billing_payments" where "provider" = ? and "provider_reference" = ?`,
      [provider, reference],
      "all",
    );
    return rows[0];
  }

  /** A page of a patient's payments (of one invoice, when given), newest first. */
  async payments(
    em: EntityManager,
    patientId: string,
    invoiceId: string | undefined,
    after: { createdAt: string; id: string } | undefined,
    limit: number,
  ): Promise<PaymentRow[]> {
    const params: unknown[] = [patientId];
    let where = `"patient_id" = ?`;
    if (invoiceId !== undefined) {
      where += ` and "invoice_id" = ?`;
      params.push(invoiceId);
    }
    if (after !== undefined) {
      where += ` and ("created_at", "id") < (?::timestamptz, ?::uuid)`;
      params.push(after.createdAt, after.id);
    }
    params.push(limit);
    return em.execute<PaymentRow[]>(
      `select * from "billing_payments" where ${where} order by "created_at" desc, "id" desc limit ?`,
      params,
      "all",
    );
  }

  /** What the invoice's open payments (PENDING, AUTHORIZED) hold of its amount due. */
  async inFlightMinor(em: EntityManager, invoiceId: string): Promise<bigint> {
    const rows = await em.execute<{ sum: string | null }[]>(
      `select sum("amount_minor")::text as "sum" from "billing_payments" ` +
        `where "invoice_id" = ? and "state" in ('pending', 'authorized')`,
      [invoiceId],
      "all",
    );
    return BigInt(rows[0]?.sum ?? "0");
  }

  async setProviderReference(em: EntityManager, paymentId: string, reference: string, expireAt: Date, now: Date) {
    await em.execute(
      `update "billing_payments" set "provider_reference" = ?, "expire_at" = ?, "version" = "version" + 1, "updated_at" = ? ` +
        `where "id" = ? and "provider_reference" is null`,
      [reference, expireAt, now, paymentId],
      "run",
    );
  }

  /** Moves a payment from `from` to `to`, only if it is still in `from`; the updated row, or undefined. */
  async movePayment(
    em: EntityManager,
    paymentId: string,
    from: PaymentStateName,
    to: PaymentStateName,
    fields: { failureReason?: FailureReasonName | null; settledAt?: Date; receiptNumber?: string; now: Date },
  ): Promise<PaymentRow | undefined> {
    const rows = await em.execute<PaymentRow[]>(
      `update "billing_payments" set "state" = ?, "failure_reason" = ?, "settled_at" = coalesce(?, "settled_at"), ` +
        `"receipt_number" = coalesce("receipt_number", ?), "version" = "version" + 1, "updated_at" = ? ` +
        `where "id" = ? and "state" = ? returning *`,
      [
        to,
        fields.failureReason ?? null,
        fields.settledAt ?? null,
        fields.receiptNumber ?? null,
        fields.now,
        paymentId,
        from,
      ],
      "all",
    );
    return rows[0];
  }

  async addPaymentRefunded(em: EntityManager, paymentId: string, amount: bigint, now: Date): Promise<void> {
    await em.execute(
      `update "billing_payments" set "refunded_minor" = "refunded_minor" + ?, "version" = "version" + 1, "updated_at" = ? where "id" = ?`,
      [amount.toString(), now, paymentId],
      "run",
    );
  }

  /** Open payments with no news since `quietSince` (and those never sent), oldest first: the poller's round. */
  async paymentsToPoll(em: EntityManager, quietSince: Date, limit: number): Promise<PaymentRow[]> {
    return em.execute<PaymentRow[]>(
      `select * from "billing_payments" where "state" in ('pending', 'authorized') and "updated_at" <= ? ` +
        `order by "updated_at" limit ?`,
      [quietSince, limit],
      "all",
    );
  }

  /** PENDING refunds with no news since `quietSince`, with their payment: the poller sends them again. */
  async refundsToRetry(em: EntityManager, quietSince: Date, limit: number): Promise<RefundRow[]> {
    return em.execute<RefundRow[]>(
      `select * from "billing_refunds" where "state" = 'pending' and "updated_at" <= ? order by "updated_at" limit ?`,
      [quietSince, limit],
      "all",
    );
  }

  /** Payments created in [from, to) that the provider knows (reconciliation). */
  async paymentsBetween(em: EntityManager, provider: string, from: Date, to: Date): Promise<PaymentRow[]> {
    return em.execute<PaymentRow[]>(
      `select * from "billing_payments" where "provider" = ? and "created_at" >= ? and "created_at" < ?`,
      [provider, from, to],
      "all",
    );
  }

  // ---- refunds

  async insertRefund(
    em: EntityManager,
    r: {
      id: string;
      paymentId: string;
      patientId: string;
      requestId: string;
      amountMinor: bigint;
      reason: string;
      requestedBy: string;
      requestedByRole: string;
      now: Date;
    },
  ): Promise<RefundRow | undefined> {
    const rows = await em.execute<RefundRow[]>(
      `insert into "billing_refunds" ("id", "payment_id", "patient_id", "request_id", "amount_minor", "state", "reason", ` +
        `"provider_reference", "requested_by", "requested_by_role", "created_at", "completed_at", "updated_at") ` +
        `values (?, ?, ?, ?, ?, 'pending', ?, null, ?, ?, ?, null, ?) ` +
        `on conflict on constraint "billing_refunds_request_unique" do nothing returning *`,
      [
        r.id,
        r.paymentId,
        r.patientId,
        r.requestId,
        r.amountMinor.toString(),
        r.reason,
        r.requestedBy,
        r.requestedByRole,
        r.now,
        r.now,
      ],
      "all",
    );
    return rows[0];
  }

  async refundByRequest(em: EntityManager, paymentId: string, requestId: string): Promise<RefundRow | undefined> {
    const rows = await em.execute<RefundRow[]>(
      `select * from "billing_refunds" where "payment_id" = ? and "request_id" = ?`,
      [paymentId, requestId],
      "all",
    );
    return rows[0];
  }

  async lockRefund(em: EntityManager, refundId: string): Promise<RefundRow | undefined> {
    const rows = await em.execute<RefundRow[]>(
      `select * from "billing_refunds" where "id" = ? for update`,
      [refundId],
      "all",
    );
    return rows[0];
  }

  async refundsOf(em: EntityManager, paymentIds: readonly string[]): Promise<RefundRow[]> {
    if (paymentIds.length === 0) return [];
    return em.execute<RefundRow[]>(
      `select * from "billing_refunds" where "payment_id" = any(?::uuid[]) order by "created_at", "id"`,
      [`{${paymentIds.join(",")}}`],
      "all",
    );
  }

  /** What a payment's refunds hold (pending and succeeded): no refund may exceed what was paid. */
  async refundsHeldMinor(em: EntityManager, paymentId: string): Promise<bigint> {
    const rows = await em.execute<{ sum: string | null }[]>(
      `select sum("amount_minor")::text as "sum" from "billing_refunds" where "payment_id" = ? and "state" <> 'failed'`,
      [paymentId],
      "all",
    );
    return BigInt(rows[0]?.sum ?? "0");
  }

  async moveRefund(
    em: EntityManager,
    refundId: string,
    to: RefundStateName,
    providerReference: string | null,
    now: Date,
  ): Promise<RefundRow | undefined> {
    const rows = await em.execute<RefundRow[]>(
      `update "billing_refunds" set "state" = ?, "provider_reference" = coalesce("provider_reference", ?), ` +
        `"completed_at" = case when ?::text <> 'pending' then ?::timestamptz else null end, "updated_at" = ? ` +
        `where "id" = ? and "state" = 'pending' returning *`,
      [to, providerReference, to, now, now, refundId],
      "all",
    );
    return rows[0];
  }

  async refundsBetween(
    em: EntityManager,
    provider: string,
    from: Date,
    to: Date,
  ): Promise<(RefundRow & { payment_currency: string })[]> {
    return em.execute(
      `select r.*, p."currency" as "payment_currency" from "billing_refunds" r join "billing_payments" p on p."id" = r."payment_id" ` +
        `where p."provider" = ? and r."created_at" >= ? and r."created_at" < ?`,
      [provider, from, to],
      "all",
    );
  }

  // ---- the provider's events

  /** Records an event in the ledger; false when it is there already (a duplicate callback). */
  async insertEvent(
    em: EntityManager,
    e: {
      provider: string;
      eventId: string;
      kind: string;
      providerReference: string;
      paymentId: string | null;
      refundId: string | null;
      amountMinor: bigint | null;
      currency: string | null;
      via: "callback" | "poll" | "create";
      occurredAt: Date;
      now: Date;
    },
  ): Promise<boolean> {
    const rows = await em.execute<{ event_id: string }[]>(
      `insert into "billing_provider_events" ("provider", "event_id", "kind", "provider_reference", "payment_id", ` +
        `"refund_id", "amount_minor", "currency", "via", "outcome", "occurred_at", "received_at") ` +
        `values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?) on conflict do nothing returning "event_id"`,
      [
        e.provider,
        e.eventId,
        e.kind,
        e.providerReference,
        e.paymentId,
        e.refundId,
        e.amountMinor?.toString() ?? null,
        e.currency,
        e.via,
        e.occurredAt,
        e.now,
      ],
      "all",
    );
    return rows.length === 1;
  }

  async setEventOutcome(em: EntityManager, provider: string, eventId: string, outcome: "applied" | "ignored") {
    await em.execute(
      `update "billing_provider_events" set "outcome" = ? where "provider" = ? and "event_id" = ?`,
      [outcome, provider, eventId],
      "run",
    );
  }
}
