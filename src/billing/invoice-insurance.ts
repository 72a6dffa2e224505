import { Code } from "@connectrpc/connect";
import type { SecretBox } from "../auth/auth-deps.ts";
import { SecretBoxError } from "../auth/secret-box.ts";
import { statusError } from "../rpc/error-mapping.ts";
import type { InvoiceRow } from "./billing-rows.ts";

/** The insurance an invoice applied: the profile's policy when the invoice was issued, and the share it covered. */
export interface InvoiceInsurance {
  readonly provider: string;
  readonly policyNumber: string;
  readonly memberId: string;
  readonly coverageBasisPoints: number;
}

/** An invoice row with its insurance opened, for mapping. */
export interface InvoiceView {
  readonly invoice: InvoiceRow;
  /** Undefined when the invoice was issued without a valid policy. */
  readonly insurance: InvoiceInsurance | undefined;
}

/** The associated data binding a sealed insurance to its invoice row: a value copied to another row does not open. */
const contextOf = (invoiceId: string) => `billing_invoices.insurance_sealed:${invoiceId}`;

/**
 * Seals an invoice's insurance (`billing_invoices.insurance_sealed`). The insurer,
 * policy number and member id are insurance identifiers, so they are never stored in
 * clear. Sealed with the secret box, like the payer's UPI id on the invoice's payments
 * (`openUpiId`), rather than with a data key per row (envelope encryption): the copy is
 * written once, when the invoice is issued, and read with every invoice listed, so one
 * AES-256-GCM opening and no extra key columns per invoice; and billing's identifiers
 * stay under one key, moving together when the secret key becomes rotatable
 * (`npm run keys:rotate` does not cover it yet, as it does not cover the UPI ids).
 */
export function sealInsurance(box: SecretBox, invoiceId: string, insurance: InvoiceInsurance): string {
  const { provider, policyNumber, memberId, coverageBasisPoints } = insurance;
  return box.seal(JSON.stringify({ provider, policyNumber, memberId, coverageBasisPoints }), contextOf(invoiceId));
}

/**
 * The sealed insurance of an invoice, opened. A value sealed for another row, tampered
 * with or under a missing key answers DATA_LOSS (`INVOICE_INTEGRITY_CHECK_FAILED`).
 */
export function openInsurance(
  box: SecretBox,
  invoice: Pick<InvoiceRow, "id" | "patient_id" | "insurance_sealed">,
): InvoiceInsurance | undefined {
  if (invoice.insurance_sealed === null) return undefined;
  let opened: string;
  try {
    opened = box.open(invoice.insurance_sealed, contextOf(invoice.id));
  } catch (error) {
    if (!(error instanceof SecretBoxError)) throw error;
    throw statusError(
      Code.DataLoss,
      "INVOICE_INTEGRITY_CHECK_FAILED",
      "A stored invoice failed its integrity check and cannot be shown. Quote the request id when reporting it.",
      [],
      { invoice: `patients/${invoice.patient_id}/invoices/${invoice.id}` },
    );
  }
  const parsed = JSON.parse(opened) as Partial<InvoiceInsurance>;
  return {
    provider: parsed.provider ?? "",
    policyNumber: parsed.policyNumber ?? "",
    memberId: parsed.memberId ?? "",
    coverageBasisPoints: parsed.coverageBasisPoints ?? 0,
  };
}

/** The view of an invoice: its row, and its insurance opened. */
export function invoiceView(box: SecretBox, invoice: InvoiceRow): InvoiceView {
  return { invoice, insurance: openInsurance(box, invoice) };
}
