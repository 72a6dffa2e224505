import type { ChargeKindName, ChargeStateName, InvoiceStateName } from "./invoice-rules.ts";
import type { FailureReasonName, PaymentStateName, RefundStateName } from "./payment-states.ts";

/** A timestamp as the driver returns it. */
export type Time = string | Date;

/** A `billing_charges` row as the driver returns it (bigint as text). */
export interface ChargeRow {
  readonly id: string;
  readonly patient_id: string;
  readonly kind: ChargeKindName;
  readonly source_resource: string;
  readonly description: string;
  readonly amount_minor: string;
  readonly currency: string;
  readonly state: ChargeStateName;
  readonly invoice_id: string | null;
  readonly create_request_id: string | null;
  readonly created_at: Time;
}

/** A `billing_invoices` row. */
export interface InvoiceRow {
  readonly id: string;
  readonly patient_id: string;
  readonly invoice_number: string;
  readonly state: InvoiceStateName;
  readonly currency: string;
  readonly lines: unknown;
  readonly subtotal_minor: string;
  readonly tax_minor: string;
  readonly total_minor: string;
  readonly covered_minor: string;
  readonly patient_total_minor: string;
  readonly paid_minor: string;
  readonly refunded_minor: string;
  /** The insurance applied, sealed (secret box, bound to the invoice); `openInsurance` opens it. Null: none. */
  readonly insurance_sealed: string | null;
  /** `YYYY-MM-DD`. */
  readonly due_day: string;
  readonly issued_at: Time;
  readonly paid_at: Time | null;
  readonly version: number;
  readonly created_at: Time;
  readonly updated_at: Time;
}

/** A `billing_payments` row. */
export interface PaymentRow {
  readonly id: string;
  readonly patient_id: string;
  readonly invoice_id: string;
  readonly request_id: string;
  readonly amount_minor: string;
  readonly currency: string;
  /** Sealed (secret box, context `payment:<id>`); `openUpiId` opens it. */
  readonly upi_id_sealed: string;
  readonly state: PaymentStateName;
  readonly failure_reason: FailureReasonName | null;
  readonly provider: string;
  readonly provider_reference: string | null;
  readonly refunded_minor: string;
  readonly payer: string;
  readonly payer_role: string;
  readonly receipt_number: string | null;
  readonly expire_at: Time;
  readonly settled_at: Time | null;
  readonly version: number;
  readonly created_at: Time;
  readonly updated_at: Time;
}

/** A `billing_refunds` row. */
export interface RefundRow {
  readonly id: string;
  readonly payment_id: string;
  readonly patient_id: string;
  readonly request_id: string;
  readonly amount_minor: string;
  readonly state: RefundStateName;
  readonly reason: string;
  readonly provider_reference: string | null;
  readonly requested_by: string;
  readonly requested_by_role: string;
  readonly created_at: Time;
  readonly completed_at: Time | null;
}
