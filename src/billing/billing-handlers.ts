import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { ReceiptFormat } from "../../gen/telemed/patient/v1/billing_pb.js";
import type { BillingService } from "../../gen/telemed/patient/v1/billing_service_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import { actingForKey, principalKey } from "../rpc/context-keys.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import {
  chargeKindName,
  chargeToProto,
  idsOf,
  invoiceStatesOf,
  invoiceToProto,
  paymentToProto,
} from "./billing-mapping.ts";
import type { Invoicing } from "./invoicing.ts";
import type { BillingActor, Payments } from "./payments.ts";
import type { Receipts } from "./receipt-service.ts";

/** The use cases behind BillingService. */
export interface BillingUseCases {
  readonly invoicing: Invoicing;
  readonly payments: Payments;
  readonly receipts: Receipts;
}

const defaultPageSize = 25;

/**
 * BillingService handlers: protobuf in, protobuf out. The pipeline decided who may
 * call and for which patient (the contract's policy: the patient, a guardian with the
 * PAY_BILLS grant, admins, services for charges), validated the request and audits
 * reads; the use cases write their own audit entries inside their transactions.
 * Another patient's invoice or payment is NOT_FOUND, like a missing one.
 */
export function billingService(u: BillingUseCases): Partial<ServiceImpl<typeof BillingService>> {
  const patientOf = (context: HandlerContext): string => {
    const actingFor = context.values.get(actingForKey);
    if (actingFor === undefined) throw notFound("Patient");
    return actingFor.patientId;
  };
  const actorOf = (context: HandlerContext): BillingActor => {
    const principal = context.values.get(principalKey);
    if (principal === undefined) throw new DomainError("unauthenticated", "UNAUTHENTICATED", "Log in first.");
    const proxy = context.values.get(actingForKey)?.proxy ?? false;
    return { principal: principal.name, role: proxy ? "guardian" : principal.role };
  };
  const audit = (context: HandlerContext) => context.values.get(callAuditKey);
  const idOf = (name: string, patientId: string, collection: string, resource: string, suffix = ""): string => {
    const ids = idsOf(name, collection, suffix);
    if (ids === undefined || ids.patientId !== patientId) throw notFound(resource);
    return ids.id;
  };
  const pageOf = (scope: string, token: string) => {
    const cursor = decodePageToken(scope, token);
    return cursor === undefined ? undefined : { createdAt: String(cursor.t), id: String(cursor.i) };
  };
  const nextOf = <T>(scope: string, rows: T[], size: number, last: (row: T) => { t: string; i: string }) =>
    rows.length > size ? encodePageToken(scope, last(rows[size - 1] as T)) : "";

  return {
    async createCharge(request, context) {
      const patientId = patientOf(context);
      const charge = request.charge;
      const kind = charge === undefined ? undefined : chargeKindName(charge.kind);
      if (charge === undefined || kind === undefined) throw invalidArgument("charge.kind", "is required");
      const created = await u.invoicing.createCharge(
        patientId,
        {
          kind,
          sourceResource: charge.sourceResource,
          description: charge.description,
          amount:
            charge.amount === undefined
              ? undefined
              : { minor: charge.amount.amountMinor, currency: charge.amount.currencyCode },
        },
        request.requestId,
        actorOf(context).principal,
        audit(context),
      );
      return { charge: chargeToProto(created) };
    },

    async listInvoices(request, context) {
      const patientId = patientOf(context);
      const states = invoiceStatesOf(request.states);
      const scope = `invoices:${patientId}:${states.join(",")}`;
      const size = request.pageSize || defaultPageSize;
      const views = await u.invoicing.list(patientId, states, pageOf(scope, request.pageToken), size + 1);
      return {
        invoices: views.slice(0, size).map(invoiceToProto),
        nextPageToken: nextOf(scope, views, size, ({ invoice }) => ({
          t: new Date(invoice.created_at).toISOString(),
          i: invoice.id,
        })),
      };
    },

    async getInvoice(request, context) {
      const patientId = patientOf(context);
      const invoice = await u.invoicing.get(patientId, idOf(request.name, patientId, "invoices", "Invoice"));
      return { invoice: invoiceToProto(invoice) };
    },

    async createPayment(request, context) {
      const patientId = patientOf(context);
      const payment = request.payment;
      if (payment === undefined) throw invalidArgument("payment", "is required");
      const view = await u.payments.create(
        patientId,
        {
          invoiceId: idOf(payment.invoice, patientId, "invoices", "Invoice"),
          amount:
            payment.amount === undefined
              ? undefined
              : { minor: payment.amount.amountMinor, currency: payment.amount.currencyCode },
          upiId: payment.upiId,
        },
        request.requestId,
        actorOf(context),
        audit(context),
      );
      return { payment: paymentToProto(view) };
    },

    async getPayment(request, context) {
      const patientId = patientOf(context);
      const view = await u.payments.get(patientId, idOf(request.name, patientId, "payments", "Payment"));
      return { payment: paymentToProto(view) };
    },

    async listPayments(request, context) {
      const patientId = patientOf(context);
      const invoiceId = request.invoice === "" ? undefined : idOf(request.invoice, patientId, "invoices", "Invoice");
      const scope = `payments:${patientId}:${invoiceId ?? ""}`;
      const size = request.pageSize || defaultPageSize;
      const views = await u.payments.list(patientId, invoiceId, pageOf(scope, request.pageToken), size + 1);
      return {
        payments: views.slice(0, size).map(paymentToProto),
        nextPageToken: nextOf(scope, views, size, (view) => ({
          t: new Date(view.payment.created_at).toISOString(),
          i: view.payment.id,
        })),
      };
    },

    async getPaymentReceipt(request, context) {
      const patientId = patientOf(context);
      const paymentId = idOf(request.name, patientId, "payments", "Payment", "/receipt");
      const receipt = await u.receipts.get(patientId, paymentId, request.format === ReceiptFormat.PDF ? "pdf" : "html");
      return { receipt };
    },

    async refundPayment(request, context) {
      const patientId = patientOf(context);
      const view = await u.payments.refund(
        patientId,
        idOf(request.name, patientId, "payments", "Payment"),
        request.amount === undefined
          ? undefined
          : { minor: request.amount.amountMinor, currency: request.amount.currencyCode },
        request.reason,
        request.requestId,
        actorOf(context),
        audit(context),
      );
      return { payment: paymentToProto(view) };
    },
  };
}
