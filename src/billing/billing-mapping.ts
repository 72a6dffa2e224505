import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Charge,
  Charge_State,
  ChargeKind,
  ChargeSchema,
  type Invoice,
  Invoice_State,
  InvoiceSchema,
  type Payment,
  Payment_FailureReason,
  Payment_State,
  PaymentSchema,
  Refund_State,
} from "../../gen/telemed/patient/v1/billing_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { invoiceName, paymentName } from "./billing-notices.ts";
import type { ChargeRow, RefundRow } from "./billing-store.ts";
import type { InvoiceView } from "./invoice-insurance.ts";
import {
  amountDue,
  type ChargeKindName,
  type ChargeStateName,
  type InvoiceStateName,
  linesFromJson,
} from "./invoice-rules.ts";
import type { FailureReasonName, PaymentStateName, RefundStateName } from "./payment-states.ts";
import type { PaymentView } from "./payments.ts";

const kindEnum: Readonly<Record<ChargeKindName, ChargeKind>> = {
  consultation: ChargeKind.CONSULTATION,
  emergency_transport: ChargeKind.EMERGENCY_TRANSPORT,
  xray: ChargeKind.XRAY,
  other: ChargeKind.OTHER,
};
const chargeStateEnum: Readonly<Record<ChargeStateName, Charge_State>> = {
  pending: Charge_State.PENDING,
  invoiced: Charge_State.INVOICED,
  voided: Charge_State.VOIDED,
};
const invoiceStateEnum: Readonly<Record<InvoiceStateName, Invoice_State>> = {
  draft: Invoice_State.DRAFT,
  open: Invoice_State.OPEN,
  partially_paid: Invoice_State.PARTIALLY_PAID,
  paid: Invoice_State.PAID,
  void: Invoice_State.VOID,
  refunded: Invoice_State.REFUNDED,
};
const paymentStateEnum: Readonly<Record<PaymentStateName, Payment_State>> = {
  pending: Payment_State.PENDING,
  authorized: Payment_State.AUTHORIZED,
  succeeded: Payment_State.SUCCEEDED,
  failed: Payment_State.FAILED,
  expired: Payment_State.EXPIRED,
};
const failureEnum: Readonly<Record<FailureReasonName, Payment_FailureReason>> = {
  declined: Payment_FailureReason.DECLINED,
  insufficient_funds: Payment_FailureReason.INSUFFICIENT_FUNDS,
  invalid_upi_id: Payment_FailureReason.INVALID_UPI_ID,
  timeout: Payment_FailureReason.TIMEOUT,
  provider_error: Payment_FailureReason.PROVIDER_ERROR,
};
const refundStateEnum: Readonly<Record<RefundStateName, Refund_State>> = {
  pending: Refund_State.PENDING,
  succeeded: Refund_State.SUCCEEDED,
  failed: Refund_State.FAILED,
};

/** ChargeKind to its stored name; undefined for UNSPECIFIED (protovalidate refuses it first). */
export function chargeKindName(kind: ChargeKind): ChargeKindName | undefined {
  return (Object.keys(kindEnum) as ChargeKindName[]).find((name) => kindEnum[name] === kind);
}

/** The stored invoice states a ListInvoices `states` filter selects; all when empty. */
export function invoiceStatesOf(states: readonly Invoice_State[]): InvoiceStateName[] {
  return (Object.keys(invoiceStateEnum) as InvoiceStateName[]).filter((name) =>
    states.includes(invoiceStateEnum[name]),
  );
}

/** The ids in `patients/{p}/{collection}/{id}[/suffix]`, or undefined when it is not one. */
export function idsOf(name: string, collection: string, suffix = ""): { patientId: string; id: string } | undefined {
  const match = new RegExp(`^patients/([^/]+)/${collection}/([^/]+)${suffix}$`).exec(name);
  return match === null ? undefined : { patientId: match[1] as string, id: match[2] as string };
}

const money = (minor: bigint | string, currencyCode: string) => ({ amountMinor: BigInt(minor), currencyCode });
const time = (value: string | Date | null) => (value === null ? undefined : timestampFromMs(new Date(value).getTime()));

export function chargeToProto(row: ChargeRow): Charge {
  return create(ChargeSchema, {
    name: `patients/${row.patient_id}/charges/${row.id}`,
    kind: kindEnum[row.kind],
    sourceResource: row.source_resource,
    description: row.description,
    amount: money(row.amount_minor, row.currency),
    state: chargeStateEnum[row.state],
    invoice: row.invoice_id === null ? "" : invoiceName(row.patient_id, row.invoice_id),
    createTime: time(row.created_at),
  });
}

/** An invoice, its insurance opened by the caller (the use case: `Invoicing.get` and `list`). */
export function invoiceToProto({ invoice: row, insurance }: InvoiceView): Invoice {
  const c = row.currency;
  const [year, month, day] = row.due_day.split("-").map(Number) as [number, number, number];
  return create(InvoiceSchema, {
    name: invoiceName(row.patient_id, row.id),
    invoiceNumber: row.invoice_number,
    state: invoiceStateEnum[row.state],
    lineItems: linesFromJson(row.lines).map((line) => ({
      charge: `patients/${row.patient_id}/charges/${line.chargeId}`,
      kind: kindEnum[line.kind],
      sourceResource: line.sourceResource,
      description: line.description,
      quantity: line.quantity,
      unitPrice: money(line.unitPriceMinor, c),
      amount: money(line.amountMinor, c),
      taxes: line.taxes.map((tax) => ({
        name: tax.name,
        rateBasisPoints: tax.basisPoints,
        amount: money(tax.amountMinor, c),
      })),
      insuranceCovered: money(line.coveredMinor, c),
      patientShare: money(line.patientShareMinor, c),
    })),
    currencyCode: c,
    subtotal: money(row.subtotal_minor, c),
    taxTotal: money(row.tax_minor, c),
    total: money(row.total_minor, c),
    insuranceCovered: money(row.covered_minor, c),
    patientTotal: money(row.patient_total_minor, c),
    amountPaid: money(row.paid_minor, c),
    amountRefunded: money(row.refunded_minor, c),
    amountDue: money(
      amountDue(row.state, BigInt(row.patient_total_minor), BigInt(row.paid_minor), BigInt(row.refunded_minor)),
      c,
    ),
    insurance:
      insurance === undefined
        ? undefined
        : {
            provider: insurance.provider,
            policyNumber: insurance.policyNumber,
            memberId: insurance.memberId,
            coverageBasisPoints: insurance.coverageBasisPoints,
          },
    dueDate: { year, month, day },
    issueTime: time(row.issued_at),
    paidTime: time(row.paid_at),
    createTime: time(row.created_at),
    updateTime: time(row.updated_at),
    etag: `v${row.version}`,
  });
}

export function paymentToProto({ payment: row, upiId, refunds }: PaymentView): Payment {
  const c = row.currency;
  return create(PaymentSchema, {
    name: paymentName(row),
    invoice: invoiceName(row.patient_id, row.invoice_id),
    amount: money(row.amount_minor, c),
    upiId,
    state: paymentStateEnum[row.state],
    providerReference: row.provider_reference ?? "",
    failureReason: row.failure_reason === null ? Payment_FailureReason.UNSPECIFIED : failureEnum[row.failure_reason],
    refunds: refunds.map((refund) => refundToProto(refund, c)),
    amountRefunded: money(row.refunded_minor, c),
    payer: { principal: row.payer, role: actorRole(row.payer_role) },
    expireTime: time(row.expire_at),
    settleTime: time(row.settled_at),
    createTime: time(row.created_at),
    updateTime: time(row.updated_at),
    etag: `v${row.version}`,
  });
}

function refundToProto(row: RefundRow, currency: string) {
  return {
    refundId: row.id,
    amount: money(row.amount_minor, currency),
    state: refundStateEnum[row.state],
    reason: row.reason,
    providerReference: row.provider_reference ?? "",
    requestedBy: {
      principal: row.requested_by === "system" ? "" : row.requested_by,
      role: actorRole(row.requested_by_role),
    },
    createTime: time(row.created_at),
    completeTime: time(row.completed_at),
  };
}

function actorRole(role: string): ActorRole {
  switch (role) {
    case "patient":
      return ActorRole.PATIENT;
    case "guardian":
      return ActorRole.GUARDIAN;
    case "admin":
      return ActorRole.ADMIN;
    case "service":
      return ActorRole.SERVICE;
    case "system":
      return ActorRole.SYSTEM;
    default:
      return ActorRole.UNSPECIFIED;
  }
}
