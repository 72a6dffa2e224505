import { shareOf } from "./money.ts";

/** Charge kinds as stored (the lower-case short names of ChargeKind). */
export const chargeKinds = ["consultation", "emergency_transport", "xray", "other"] as const;
export type ChargeKindName = (typeof chargeKinds)[number];

/** Charge states as stored. */
export const chargeStates = ["pending", "invoiced", "voided"] as const;
export type ChargeStateName = (typeof chargeStates)[number];

/** Invoice states as stored (the lower-case short names of Invoice.State). */
export const invoiceStates = ["draft", "open", "partially_paid", "paid", "void", "refunded"] as const;
export type InvoiceStateName = (typeof invoiceStates)[number];

/** A tax applied to every line, in basis points (900 = 9%). */
export interface TaxRule {
  readonly name: string;
  readonly basisPoints: number;
}

/** A charge as invoicing sees it. */
export interface InvoiceableCharge {
  readonly id: string;
  readonly kind: ChargeKindName;
  readonly sourceResource: string;
  readonly description: string;
  readonly amountMinor: bigint;
}

/** One line of an invoice, as stored (jsonb, amounts as decimal strings) and mapped. */
export interface InvoiceLine {
  readonly chargeId: string;
  readonly kind: ChargeKindName;
  readonly sourceResource: string;
  readonly description: string;
  readonly quantity: number;
  readonly unitPriceMinor: bigint;
  readonly amountMinor: bigint;
  readonly taxes: readonly { readonly name: string; readonly basisPoints: number; readonly amountMinor: bigint }[];
  readonly coveredMinor: bigint;
  readonly patientShareMinor: bigint;
}

/** The sums of an invoice's lines. */
export interface InvoiceTotals {
  readonly subtotalMinor: bigint;
  readonly taxMinor: bigint;
  readonly totalMinor: bigint;
  readonly coveredMinor: bigint;
  readonly patientTotalMinor: bigint;
}

/**
 * The lines and totals of an invoice for `charges`. Rounding rule, per line and in
 * integers: each tax is `amount × rate / 10000` rounded half to even; the insurer's
 * share is `(amount + taxes) × coverage / 10000` rounded half to even; the patient's
 * share is the rest, so covered + patient share is exactly the line's total and the
 * invoice's sums are the sums of its lines (no rounding at the invoice level).
 */
export function invoiceLines(
  charges: readonly InvoiceableCharge[],
  taxes: readonly TaxRule[],
  coverageBasisPoints: number,
): { lines: InvoiceLine[]; totals: InvoiceTotals } {
  const lines = charges.map((charge): InvoiceLine => {
    const lineTaxes = taxes.map((tax) => ({
      name: tax.name,
      basisPoints: tax.basisPoints,
      amountMinor: shareOf(charge.amountMinor, tax.basisPoints),
    }));
    const gross = charge.amountMinor + lineTaxes.reduce((sum, tax) => sum + tax.amountMinor, 0n);
    const covered = shareOf(gross, coverageBasisPoints);
    return {
      chargeId: charge.id,
      kind: charge.kind,
      sourceResource: charge.sourceResource,
      description: charge.description,
      quantity: 1,
      unitPriceMinor: charge.amountMinor,
      amountMinor: charge.amountMinor,
      taxes: lineTaxes,
      coveredMinor: covered,
      patientShareMinor: gross - covered,
    };
  });
  const sum = (pick: (line: InvoiceLine) => bigint) => lines.reduce((total, line) => total + pick(line), 0n);
  const subtotalMinor = sum((line) => line.amountMinor);
  const taxMinor = sum((line) => line.taxes.reduce((total, tax) => total + tax.amountMinor, 0n));
  const coveredMinor = sum((line) => line.coveredMinor);
  return {
    lines,
    totals: {
      subtotalMinor,
      taxMinor,
      totalMinor: subtotalMinor + taxMinor,
      coveredMinor,
      patientTotalMinor: subtotalMinor + taxMinor - coveredMinor,
    },
  };
}

/**
 * Where an invoice stands after its payments and refunds: PAID once the net paid
 * covers the patient total, PARTIALLY_PAID while some is paid, REFUNDED once
 * everything paid went back, OPEN otherwise. VOID and DRAFT stay as they are.
 */
export function invoiceStateAfter(
  current: InvoiceStateName,
  patientTotalMinor: bigint,
  paidMinor: bigint,
  refundedMinor: bigint,
): InvoiceStateName {
  if (current === "void" || current === "draft") return current;
  const net = paidMinor - refundedMinor;
  if (paidMinor > 0n && net <= 0n) return "refunded";
  if (net >= patientTotalMinor) return "paid";
  return net > 0n ? "partially_paid" : "open";
}

/** What remains to pay: patient total minus paid plus refunded, never below zero; nothing on a VOID or REFUNDED invoice. */
export function amountDue(
  state: InvoiceStateName,
  patientTotalMinor: bigint,
  paidMinor: bigint,
  refundedMinor: bigint,
): bigint {
  if (state === "void" || state === "refunded" || state === "draft") return 0n;
  const due = patientTotalMinor - paidMinor + refundedMinor;
  return due > 0n ? due : 0n;
}

/** Stored form of lines (jsonb cannot hold bigint): amounts as decimal strings. */
export function linesToJson(lines: readonly InvoiceLine[]): unknown[] {
  return lines.map((line) => ({
    ...line,
    unitPriceMinor: line.unitPriceMinor.toString(),
    amountMinor: line.amountMinor.toString(),
    coveredMinor: line.coveredMinor.toString(),
    patientShareMinor: line.patientShareMinor.toString(),
    taxes: line.taxes.map((tax) => ({ ...tax, amountMinor: tax.amountMinor.toString() })),
  }));
}

/** Lines back from their stored form. */
export function linesFromJson(stored: unknown): InvoiceLine[] {
  const rows = (Array.isArray(stored) ? stored : []) as Record<string, unknown>[];
  return rows.map((row) => ({
    chargeId: String(row.chargeId),
    kind: row.kind as ChargeKindName,
    sourceResource: String(row.sourceResource),
    description: String(row.description),
    quantity: Number(row.quantity),
    unitPriceMinor: BigInt(row.unitPriceMinor as string),
    amountMinor: BigInt(row.amountMinor as string),
    coveredMinor: BigInt(row.coveredMinor as string),
    patientShareMinor: BigInt(row.patientShareMinor as string),
    taxes: ((row.taxes ?? []) as Record<string, unknown>[]).map((tax) => ({
      name: String(tax.name),
      basisPoints: Number(tax.basisPoints),
      amountMinor: BigInt(tax.amountMinor as string),
    })),
  }));
}
