import { defineEntity, p } from "@mikro-orm/core";
import { chargeKinds, chargeStates, invoiceStates } from "./invoice-rules.ts";
import { failureReasons, paymentStates, refundStates } from "./payment-states.ts";

/**
 * The billing context's tables (issue #7, RQ-PT008). Rows are read and written with
 * hand-written SQL (billing-store.ts); these entities describe the schema, which
 * Migration20261129150000_create_billing builds and Migration20261129170000/170100 (the
 * invoice's insurance sealed) change (test/db/schema-drift.test.ts).
 * Amounts are `bigint` minor units with a `varchar(3)` ISO 4217 code, never numeric
 * or floating point. "Never charged twice" is held by the database, not only the code:
 *
 * - a charge per source resource (`billing_charges_source_unique`), a request id per
 *   patient for charges and payments, and per payment for refunds;
 * - a provider reference belongs to one payment and one refund
 *   (`billing_payments_provider_ref_unique`, `billing_refunds_provider_ref_unique`);
 * - every event from the provider (callback or poll) is in `billing_provider_events`
 *   under its event id, once: a duplicate callback inserts nothing and changes nothing;
 * - state changes are guarded UPDATEs (`where state = <the state read>`), and the
 *   invoice row is locked while a payment for it is created or settled.
 */
export const ChargeEntity = defineEntity({
  name: "BillingCharge",
  tableName: "billing_charges",
  properties: {
    id: p.uuid().primary(),
    patientId: p.uuid(),
    kind: p.enum(chargeKinds),
    sourceResource: p.string().length(300),
    description: p.string().length(200),
    amountMinor: p.bigint("string").check("amount_minor > 0"),
    currency: p.string().length(3),
    state: p.enum(chargeStates),
    invoiceId: p.uuid().nullable(),
    /** Null for charges the service derived itself (a completed consultation). */
    createRequestId: p.uuid().nullable(),
    createdBy: p.string().length(255),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
  uniques: [
    { name: "billing_charges_source_unique", properties: ["sourceResource"] },
    { name: "billing_charges_request_unique", properties: ["patientId", "createRequestId"] },
  ],
  indexes: [{ name: "billing_charges_patient_state_idx", properties: ["patientId", "state", "currency"] }],
});

/**
 * `billing_invoices`: the lines are jsonb (written once when the invoice is issued,
 * read whole, never queried by their parts); the totals are columns, and so are the
 * running sums of payments and refunds that the state and amount due follow from.
 */
export const InvoiceEntity = defineEntity({
  name: "BillingInvoice",
  tableName: "billing_invoices",
  properties: {
    id: p.uuid().primary(),
    patientId: p.uuid(),
    invoiceNumber: p.string().length(32).unique("billing_invoices_number_unique"),
    state: p.enum(invoiceStates),
    currency: p.string().length(3),
    lines: p.json<unknown[]>(),
    subtotalMinor: p.bigint("string"),
    taxMinor: p.bigint("string"),
    totalMinor: p.bigint("string"),
    coveredMinor: p.bigint("string"),
    patientTotalMinor: p.bigint("string").check("patient_total_minor >= 0"),
    paidMinor: p.bigint("string").check("paid_minor >= 0"),
    refundedMinor: p.bigint("string").check("refunded_minor >= 0 and refunded_minor <= paid_minor"),
    /** The insurance applied (insurer, policy number, member id, coverage), sealed with the secret box, bound to the invoice id. */
    insuranceSealed: p.text().nullable(),
    dueDate: p.date(),
    issuedAt: p.datetime(3),
    paidAt: p.datetime(3).nullable(),
    version: p.integer(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
  indexes: [{ name: "billing_invoices_patient_created_idx", properties: ["patientId", "createdAt", "id"] }],
});

/** `billing_payments`: one UPI collect each. */
export const PaymentEntity = defineEntity({
  name: "BillingPayment",
  tableName: "billing_payments",
  properties: {
    id: p.uuid().primary(),
    patientId: p.uuid(),
    invoiceId: p.uuid(),
    requestId: p.uuid(),
    amountMinor: p.bigint("string").check("amount_minor > 0"),
    currency: p.string().length(3),
    /** The payer's UPI id, a financial identifier: sealed with the secret box, bound to the payment id. */
    upiIdSealed: p.text(),
    state: p.enum(paymentStates),
    failureReason: p.enum(failureReasons).nullable(),
    provider: p.string().length(32),
    providerReference: p.string().length(128).nullable(),
    refundedMinor: p.bigint("string").check("refunded_minor >= 0 and refunded_minor <= amount_minor"),
    payer: p.string().length(255),
    payerRole: p.string().length(16),
    receiptNumber: p.string().length(32).nullable().unique("billing_payments_receipt_unique"),
    expireAt: p.datetime(3),
    settledAt: p.datetime(3).nullable(),
    version: p.integer(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
  uniques: [
    { name: "billing_payments_request_unique", properties: ["patientId", "requestId"] },
    { name: "billing_payments_provider_ref_unique", properties: ["provider", "providerReference"] },
  ],
  indexes: [
    { name: "billing_payments_patient_created_idx", properties: ["patientId", "createdAt", "id"] },
    { name: "billing_payments_invoice_idx", properties: ["invoiceId", "state"] },
    { name: "billing_payments_state_idx", properties: ["state", "updatedAt"] },
  ],
});

/** `billing_refunds`: back the same way the payment came (the provider refunds the collect). */
export const RefundEntity = defineEntity({
  name: "BillingRefund",
  tableName: "billing_refunds",
  properties: {
    id: p.uuid().primary(),
    paymentId: p.uuid(),
    patientId: p.uuid(),
    requestId: p.uuid(),
    amountMinor: p.bigint("string").check("amount_minor > 0"),
    state: p.enum(refundStates),
    reason: p.string().length(500),
    providerReference: p.string().length(128).nullable(),
    requestedBy: p.string().length(255),
    requestedByRole: p.string().length(16),
    createdAt: p.datetime(3),
    completedAt: p.datetime(3).nullable(),
    updatedAt: p.datetime(3),
  },
  uniques: [
    { name: "billing_refunds_request_unique", properties: ["paymentId", "requestId"] },
    { name: "billing_refunds_provider_ref_unique", properties: ["providerReference"] },
  ],
  indexes: [{ name: "billing_refunds_payment_idx", properties: ["paymentId", "createdAt"] }],
});

/**
 * `billing_provider_events`: the ledger of what the provider told us (callbacks and
 * poll answers), one row per provider event id, with what it did (`applied` or
 * `ignored`: a repeat, or an older status than the one we hold).
 */
export const ProviderEventEntity = defineEntity({
  name: "BillingProviderEvent",
  tableName: "billing_provider_events",
  properties: {
    provider: p.string().length(32).primary(),
    eventId: p.string().length(128).primary(),
    kind: p.string().length(32),
    providerReference: p.string().length(128),
    paymentId: p.uuid().nullable(),
    refundId: p.uuid().nullable(),
    amountMinor: p.bigint("string").nullable(),
    currency: p.string().length(3).nullable(),
    via: p.string().length(16),
    outcome: p.string().length(16),
    occurredAt: p.datetime(3),
    receivedAt: p.datetime(3),
  },
  indexes: [{ name: "billing_provider_events_payment_idx", properties: ["paymentId", "receivedAt"] }],
});

/** The billing context's entities (registered in src/db/entities.ts). */
export const billingEntities = [ChargeEntity, InvoiceEntity, PaymentEntity, RefundEntity, ProviderEventEntity] as const;
