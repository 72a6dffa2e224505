import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import { type PaymentReceipt, PaymentReceiptSchema } from "../../gen/telemed/patient/v1/billing_pb.js";
import type { SecretBox } from "../auth/auth-deps.ts";
import type { Patient } from "../patients/patient.ts";
import { DomainError, notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { paymentName } from "./billing-notices.ts";
import type { BillingStore } from "./billing-store.ts";
import { openUpiId } from "./payments.ts";
import { htmlReceipt, pdfReceipt } from "./receipts.ts";

/**
 * GetPaymentReceipt: the receipt of a SUCCEEDED payment, rendered on demand from the
 * stored payment and invoice (the receipt number is fixed when the payment succeeds,
 * so every download of it says the same).
 */
export class Receipts {
  readonly #em: () => EntityManager;
  readonly #store: BillingStore;
  readonly #patientOf: (patientId: string) => Promise<Patient>;
  readonly #payeeName: string;
  readonly #box: SecretBox;

  constructor(
    em: () => EntityManager,
    store: BillingStore,
    patientOf: (id: string) => Promise<Patient>,
    payeeName: string,
    box: SecretBox,
  ) {
    this.#box = box;
    this.#em = em;
    this.#store = store;
    this.#patientOf = patientOf;
    this.#payeeName = payeeName;
  }

  async get(patientId: string, paymentId: string, format: "html" | "pdf"): Promise<PaymentReceipt> {
    if (!isUuid(paymentId)) throw notFound("Payment");
    const em = this.#em();
    const payment = await this.#store.payment(em, patientId, paymentId);
    if (payment === undefined) throw notFound("Payment");
    if (payment.state !== "succeeded" || payment.receipt_number === null || payment.settled_at === null) {
      throw new DomainError(
        "failed-precondition",
        "RECEIPT_NOT_AVAILABLE",
        "A receipt exists once the payment succeeded.",
      );
    }
    const invoice = await this.#store.invoice(em, patientId, payment.invoice_id);
    if (invoice === undefined) throw notFound("Invoice");
    const patient = await this.#patientOf(patientId);
    const view = {
      payment,
      upiId: openUpiId(this.#box, payment),
      refunds: await this.#store.refundsOf(em, [payment.id]),
    };
    const context = {
      payeeName: this.#payeeName,
      patientName: `${patient.legalName.given} ${patient.legalName.family}`.trim(),
    };
    const document = format === "pdf" ? pdfReceipt(view, invoice, context) : htmlReceipt(view, invoice, context);
    return create(PaymentReceiptSchema, {
      name: `${paymentName(payment)}/receipt`,
      receiptNumber: payment.receipt_number,
      contentType: document.contentType,
      content: document.content,
      issueTime: timestampFromMs(new Date(payment.settled_at).getTime()),
    });
  }
}
