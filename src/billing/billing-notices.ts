import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";
import type { AuditEntryDraft } from "../audit/audit-entry.ts";
import type { NotificationDraft } from "../notifications/notifier.ts";
import type { PaymentRow, RefundRow } from "./billing-store.ts";
import { formatAmount } from "./money.ts";

/** The payment events the audit log records (as `reason`, UPPER_SNAKE like every reason). */
export type PaymentEvent =
  | "PAYMENT_CREATED"
  | "PAYMENT_AUTHORIZED"
  | "PAYMENT_SUCCEEDED"
  | "PAYMENT_FAILED"
  | "PAYMENT_EXPIRED"
  | "REFUND_REQUESTED"
  | "PAYMENT_REFUNDED"
  | "REFUND_FAILED";

export function paymentName(payment: Pick<PaymentRow, "patient_id" | "id">): string {
  return `patients/${payment.patient_id}/payments/${payment.id}`;
}

export function invoiceName(patientId: string, invoiceId: string): string {
  return `patients/${patientId}/invoices/${invoiceId}`;
}

/**
 * The audit entry of a payment event the provider reported (a callback or a poll
 * answer): the provider is the actor, the provider's event id the request id, the
 * event the reason. Entries carry names and ids only, never the UPI id or amounts.
 */
export function providerEventAudit(
  provider: string,
  payment: Pick<PaymentRow, "patient_id" | "id">,
  event: PaymentEvent,
  providerEventId: string,
): AuditEntryDraft {
  return {
    actor: `services/${provider}`,
    actorRole: ActorRole.SERVICE,
    subjectPatientId: payment.patient_id,
    proxy: false,
    action: AuditAction.UPDATE,
    resource: paymentName(payment),
    outcome:
      event === "PAYMENT_FAILED" || event === "PAYMENT_EXPIRED" || event === "REFUND_FAILED"
        ? AuditOutcome.FAILURE
        : AuditOutcome.SUCCESS,
    rpc: "",
    requestId: providerEventId,
    clientAddress: "",
    reason: event,
  };
}

/** The patient's notification when a payment settles, fails or lapses, or a refund is paid out. */
export function paymentNotice(
  payment: PaymentRow,
  invoiceNumber: string,
  what: "succeeded" | "failed" | "expired" | "refunded",
  refund?: RefundRow,
): NotificationDraft {
  const amount = formatAmount(BigInt(payment.amount_minor), payment.currency);
  const texts = {
    succeeded: ["Payment received", `We received ${amount} for invoice ${invoiceNumber}. Your receipt is ready.`],
    failed: [
      "Payment failed",
      `Your payment of ${amount} for invoice ${invoiceNumber} did not go through. Nothing was charged.`,
    ],
    expired: [
      "Payment request expired",
      `The UPI request for ${amount} (invoice ${invoiceNumber}) was not approved in time. You can pay again.`,
    ],
    refunded: [
      "Refund sent",
      `${formatAmount(BigInt(refund?.amount_minor ?? "0"), payment.currency)} of your payment for invoice ${invoiceNumber} is on its way back to your UPI account.`,
    ],
  } as const;
  const [title, body] = texts[what];
  return {
    recipientPatientId: payment.patient_id,
    category: NotificationCategory.BILLING,
    priority: what === "succeeded" ? NotificationPriority.NORMAL : NotificationPriority.HIGH,
    title,
    body,
    subjectResource: paymentName(payment),
    dedupeKey: `payment:${payment.id}:${what}${refund === undefined ? "" : `:${refund.id}`}`,
  };
}
