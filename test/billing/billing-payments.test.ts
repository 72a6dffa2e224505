import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChargeKind,
  Invoice_State,
  Payment_FailureReason,
  Payment_State,
  ReceiptFormat,
  Refund_State,
} from "../../gen/telemed/patient/v1/billing_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { signBody } from "../../src/billing/upi-wire.ts";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { NotificationCategory } from "../../gen/telemed/patient/v1/notification_pb.js";
import { bookFirstFree, consultations, refusal, ShiftedClock } from "../consultations/consultation-fixtures.ts";
import { notificationClient } from "../notifications/notification-fixtures.ts";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { auditReasons, billing, billingTestEnv, guardianOf, invoiceOf, provider, sql } from "./billing-fixtures.ts";

// One app; its clock and its UPI provider simulator move only when a test says so.
let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let admin: TestSession;
let payer: TestSession;

beforeAll(async () => {
  t = await startTestApp(billingTestEnv, { clock });
  [patient, admin] = await Promise.all([signUpPatient(t), staffSession(t, "admin")]);
  payer = await guardianOf(t, patient, [FamilyGrant.PAY_BILLS]);
}, 120_000);
afterAll(async () => {
  clock.reset();
  await t?.close();
});

const pay = (
  session: TestSession,
  invoice: string,
  extra: { upiId?: string; amountMinor?: bigint } = {},
  requestId = randomUUID(),
) =>
  billing(t, session).createPayment({
    parent: patient.patient,
    payment: {
      invoice,
      upiId: extra.upiId ?? "",
      ...(extra.amountMinor === undefined ? {} : { amount: { amountMinor: extra.amountMinor, currencyCode: "INR" } }),
    },
    requestId,
  });

async function billingTitles(session: TestSession): Promise<string[]> {
  const { notifications } = await notificationClient(t, session.interceptor).listNotifications({
    parent: session.patient,
    categories: [NotificationCategory.BILLING],
    pageSize: 100,
  });
  return notifications.map((n) => n.title);
}

describe("TST-PT008 billing and payments", () => {
  it("TST-PT008-1 paying an invoice: taxes and insurance in integer minor units, UPI collect, settle by callback, receipt and notification", async () => {
    // ₹500.00: CGST 9% and SGST 9% (₹45.00 each), the insurer covers 80% of ₹590.00, the patient pays ₹118.00.
    const invoice = await invoiceOf(t, admin, patient, [50_000n]);
    expect(invoice).toMatchObject({
      state: Invoice_State.OPEN,
      currencyCode: "INR",
      subtotal: { amountMinor: 50_000n },
      taxTotal: { amountMinor: 9_000n },
      total: { amountMinor: 59_000n },
      insuranceCovered: { amountMinor: 47_200n },
      patientTotal: { amountMinor: 11_800n },
      amountDue: { amountMinor: 11_800n },
      insurance: { provider: "Star Health", policyNumber: "P-123", coverageBasisPoints: 8000 },
    });
    expect(invoice.invoiceNumber).toMatch(/^INV-\d{4}-[0-9A-F]{10}$/);
    expect(invoice.lineItems[0]?.taxes.map((tax) => [tax.name, tax.rateBasisPoints, tax.amount?.amountMinor])).toEqual([
      ["CGST", 900, 4_500n],
      ["SGST", 900, 4_500n],
    ]);

    const { payment } = await pay(patient, invoice.name);
    expect(payment).toMatchObject({
      state: Payment_State.PENDING,
      amount: { amountMinor: 11_800n, currencyCode: "INR" },
      upiId: "asha.rao@okaxis",
      payer: { principal: patient.patient, role: ActorRole.PATIENT },
    });
    expect(payment?.providerReference).toMatch(/^col_/);
    // The UPI id is a financial identifier: sealed at rest.
    const [stored] = await sql<{ upi_id_sealed: string }>(
      t,
      `select "upi_id_sealed" from "billing_payments" where "id" = $1`,
      [payment?.name.split("/").pop()],
    );
    expect(stored?.upi_id_sealed).not.toContain("okaxis");
    // The payer approves the collect request: the provider calls back AUTHORIZED, then SUCCEEDED.
    await provider(t).tick();
    const settled = (await billing(t, patient).getPayment({ name: payment?.name ?? "" })).payment;
    expect(settled?.state).toBe(Payment_State.SUCCEEDED);
    expect(settled?.settleTime).toBeDefined();
    const paid = (await billing(t, patient).getInvoice({ name: invoice.name })).invoice;
    expect(paid).toMatchObject({
      state: Invoice_State.PAID,
      amountPaid: { amountMinor: 11_800n },
      amountDue: { amountMinor: 0n },
    });
    expect(paid?.paidTime).toBeDefined();
    expect(await billingTitles(patient)).toContain("Payment received");
    expect(await auditReasons(t, payment?.name ?? "")).toEqual([
      "PAYMENT_CREATED",
      "PAYMENT_AUTHORIZED",
      "PAYMENT_SUCCEEDED",
    ]);

    // The receipt: a well-formed HTML document, or a PDF.
    const { receipt } = await billing(t, patient).getPaymentReceipt({ name: `${payment?.name}/receipt` });
    expect(receipt?.contentType).toBe("text/html");
    const html = new TextDecoder().decode(receipt?.content);
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain(receipt?.receiptNumber ?? "?");
    expect(html).toContain("INR 118.00");
    expect(html).toContain("as******@okaxis");
    expectBalancedTags(html);
    const pdf = (
      await billing(t, patient).getPaymentReceipt({ name: `${payment?.name}/receipt`, format: ReceiptFormat.PDF })
    ).receipt;
    expect(pdf?.contentType).toBe("application/pdf");
    expectValidPdf(Buffer.from(pdf?.content ?? new Uint8Array()));
  });

  it("TST-PT008-1 a partial payment leaves what remains due; a guardian with the pay grant pays the rest with their own UPI id", async () => {
    const invoice = await invoiceOf(t, admin, patient, [100_000n]); // patient total ₹236.00
    const first = (await pay(patient, invoice.name, { amountMinor: 10_000n })).payment;
    await provider(t).tick();
    expect((await billing(t, patient).getPayment({ name: first?.name ?? "" })).payment?.state).toBe(
      Payment_State.SUCCEEDED,
    );
    const partly = (await billing(t, patient).getInvoice({ name: invoice.name })).invoice;
    expect(partly).toMatchObject({
      state: Invoice_State.PARTIALLY_PAID,
      amountPaid: { amountMinor: 10_000n },
      amountDue: { amountMinor: 13_600n },
    });
    const rest = (await pay(payer, invoice.name, { upiId: "ravi.rao@okhdfc" })).payment;
    expect(rest).toMatchObject({
      amount: { amountMinor: 13_600n },
      payer: { principal: payer.patient, role: ActorRole.GUARDIAN },
    });
    await provider(t).tick();
    expect((await billing(t, payer).getInvoice({ name: invoice.name })).invoice?.state).toBe(Invoice_State.PAID);
    const listed = await billing(t, payer).listPayments({ parent: patient.patient, invoice: invoice.name });
    expect(listed.payments.map((p) => p.name)).toEqual([rest?.name, first?.name]);
  });

  it("TST-PT008-2 a double submit: the same request id returns the first payment and one collect request", async () => {
    const invoice = await invoiceOf(t, admin, patient, [20_000n]);
    const requestId = randomUUID();
    const submits = await Promise.all(Array.from({ length: 8 }, () => pay(patient, invoice.name, {}, requestId)));
    const a = submits[0] as (typeof submits)[number];
    expect(new Set(submits.map((s) => s.payment?.name))).toEqual(new Set([a.payment?.name]));
    expect((await pay(patient, invoice.name, {}, requestId)).payment?.name).toBe(a.payment?.name);
    // Another request id while the first holds the whole amount due: refused, not charged twice.
    expect(await refusal(pay(patient, invoice.name))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "PAYMENT_IN_PROGRESS",
    });
    const paymentId = a.payment?.name.split("/").pop();
    const collects = provider(t)
      .transactions(0, Number.MAX_SAFE_INTEGER)
      .filter((tx) => tx.merchantReference === paymentId);
    expect(collects).toHaveLength(1);
    await provider(t).tick();
    const paid = (await billing(t, patient).getInvoice({ name: invoice.name })).invoice;
    expect(paid).toMatchObject({ state: Invoice_State.PAID, amountPaid: { amountMinor: 4_720n } });
    expect(await refusal(pay(patient, invoice.name))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "INVOICE_NOT_PAYABLE",
    });
    const rows = await sql(t, `select 1 from "billing_payments" where "invoice_id" = $1`, [
      invoice.name.split("/").pop(),
    ]);
    expect(rows).toHaveLength(1);

    // Eight submits with different request ids at once for the whole amount: one payment, seven refusals.
    const other = await invoiceOf(t, admin, patient, [21_000n]);
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => pay(patient, other.name)));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const refused = await Promise.all(
      outcomes.filter((o) => o.status === "rejected").map((o) => refusal(Promise.reject(o.reason))),
    );
    expect(refused.map((r) => r.reason)).toEqual(Array(7).fill("PAYMENT_IN_PROGRESS"));
    await provider(t).tick();
  });

  it("TST-PT008-3 duplicated and reordered callbacks change nothing the second time; a forged callback is refused", async () => {
    const sim = provider(t);
    const invoice = await invoiceOf(t, admin, patient, [25_000n]); // patient total ₹59.00
    sim.holdCallbacks();
    const payment = (await pay(patient, invoice.name)).payment;
    await sim.tickDue();
    const ours = (e: { collect?: { merchantReference: string } }) =>
      e.collect?.merchantReference === payment?.name.split("/").pop();
    expect(
      sim
        .queuedEvents()
        .filter(ours)
        .map((e) => e.type),
    ).toEqual(["collect.authorized", "collect.succeeded"]);
    // SUCCEEDED arrives before AUTHORIZED, and each of them twice.
    await sim.releaseCallbacks({ reverse: true, duplicate: true });
    const settled = (await billing(t, patient).getPayment({ name: payment?.name ?? "" })).payment;
    expect(settled?.state).toBe(Payment_State.SUCCEEDED);
    const invoiceAfter = (await billing(t, patient).getInvoice({ name: invoice.name })).invoice;
    expect(invoiceAfter).toMatchObject({ state: Invoice_State.PAID, amountPaid: { amountMinor: 5_900n } });
    expect(await auditReasons(t, payment?.name ?? "")).toEqual(["PAYMENT_CREATED", "PAYMENT_SUCCEEDED"]);
    const ledger = await sql<{ kind: string; outcome: string }>(
      t,
      `select "kind", "outcome" from "billing_provider_events" where "payment_id" = $1 and "via" = 'callback' order by "received_at"`,
      [payment?.name.split("/").pop()],
    );
    expect(ledger).toEqual([
      { kind: "collect.succeeded", outcome: "applied" },
      { kind: "collect.authorized", outcome: "ignored" },
    ]);
    // The provider sends the success once more, long after: nothing moves.
    const success = sim
      .sentEvents()
      .find((e) => e.type === "collect.succeeded" && e.collect?.merchantReference === payment?.name.split("/").pop());
    expect(await sim.redeliver(success?.eventId ?? "")).toBe(204);
    const again = (await billing(t, patient).getPayment({ name: payment?.name ?? "" })).payment;
    expect(again?.etag).toBe(settled?.etag);
    // A callback without the provider's signature.
    const forged = await fetch(`${t.baseUrl}/webhooks/payments/upi`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-upi-signature": `t=${Math.floor(clock.now().getTime() / 1000)},v1=${"0".repeat(64)}`,
      },
      body: JSON.stringify({ ...success, eventId: "evt_forged" }),
    });
    expect(forged.status).toBe(401);
    // A correctly signed callback from more than PAYMENT_WEBHOOK_TOLERANCE_SECONDS ago (a replay).
    const secret = Buffer.from((await readFile(join(t.dataDir, "keys", "payment-webhook.key"), "utf8")).trim(), "utf8");
    const replayBody = JSON.stringify({ ...success, eventId: "evt_replayed" });
    const replayed = await fetch(`${t.baseUrl}/webhooks/payments/upi`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-upi-signature": signBody(secret, Math.floor(clock.now().getTime() / 1000) - 301, replayBody),
      },
      body: replayBody,
    });
    expect(replayed.status).toBe(401);
    expect(await sql(t, `select 1 from "billing_provider_events" where "event_id" = 'evt_forged'`)).toHaveLength(0);
  });

  it("TST-PT008-4 a timeout followed by a late success: the late money is recorded and the excess refunded the same way", async () => {
    const sim = provider(t);
    const invoice = await invoiceOf(t, admin, patient, [30_000n]); // patient total ₹70.80
    const start = clock.now().getTime();
    const late = (await pay(patient, invoice.name, { upiId: "late@sim" })).payment;
    clock.travelTo(new Date(start + 601_000));
    await sim.tick();
    const expired = (await billing(t, patient).getPayment({ name: late?.name ?? "" })).payment;
    expect(expired).toMatchObject({ state: Payment_State.EXPIRED, failureReason: Payment_FailureReason.TIMEOUT });
    expect(await billingTitles(patient)).toContain("Payment request expired");
    // The patient pays again, and that succeeds.
    const second = (await pay(patient, invoice.name)).payment;
    await sim.tick();
    expect((await billing(t, patient).getPayment({ name: second?.name ?? "" })).payment?.state).toBe(
      Payment_State.SUCCEEDED,
    );
    // A minute later the bank settles the first one after all.
    clock.travelTo(new Date(start + 662_000));
    await sim.tick();
    const honoured = (await billing(t, patient).getPayment({ name: late?.name ?? "" })).payment;
    expect(honoured).toMatchObject({ state: Payment_State.SUCCEEDED, amountRefunded: { amountMinor: 7_080n } });
    expect(honoured?.refunds).toHaveLength(1);
    expect(honoured?.refunds[0]).toMatchObject({ state: Refund_State.SUCCEEDED, amount: { amountMinor: 7_080n } });
    expect(honoured?.refunds[0]?.reason).toMatch(/^overpayment/);
    const settled = (await billing(t, patient).getInvoice({ name: invoice.name })).invoice;
    expect(settled).toMatchObject({
      state: Invoice_State.PAID,
      amountPaid: { amountMinor: 14_160n },
      amountRefunded: { amountMinor: 7_080n },
      amountDue: { amountMinor: 0n },
    });
    expect(await auditReasons(t, late?.name ?? "")).toEqual([
      "PAYMENT_CREATED",
      "PAYMENT_EXPIRED",
      "PAYMENT_SUCCEEDED",
      "PAYMENT_REFUNDED",
    ]);
  });

  it("TST-PT008-4 polling finds a timeout the callback never told", async () => {
    const sim = provider(t);
    const invoice = await invoiceOf(t, admin, patient, [15_000n]);
    sim.holdCallbacks();
    const payment = (await pay(patient, invoice.name, { upiId: "timeout@sim" })).payment;
    clock.travelTo(new Date(clock.now().getTime() + 601_000));
    await t.app.billing.pollPayments();
    const polled = (await billing(t, patient).getPayment({ name: payment?.name ?? "" })).payment;
    expect(polled).toMatchObject({ state: Payment_State.EXPIRED, failureReason: Payment_FailureReason.TIMEOUT });
    await sim.releaseCallbacks();
    expect(await auditReasons(t, payment?.name ?? "")).toEqual(["PAYMENT_CREATED", "PAYMENT_EXPIRED"]);
    // A declined collect fails, and an unknown UPI id fails at once.
    const declined = (await pay(patient, invoice.name, { upiId: "fail@sim" })).payment;
    await sim.tick();
    expect((await billing(t, patient).getPayment({ name: declined?.name ?? "" })).payment).toMatchObject({
      state: Payment_State.FAILED,
      failureReason: Payment_FailureReason.DECLINED,
    });
    const unknown = (await pay(patient, invoice.name, { upiId: "invalid@sim" })).payment;
    expect(unknown).toMatchObject({ state: Payment_State.FAILED, failureReason: Payment_FailureReason.INVALID_UPI_ID });
    expect(await billingTitles(patient)).toContain("Payment failed");
    expect((await billing(t, patient).getInvoice({ name: invoice.name })).invoice?.state).toBe(Invoice_State.OPEN);
  });

  it("TST-PT008-2 a lost answer or a provider outage never makes a second collect; polling takes the payment up", async () => {
    const sim = provider(t);
    const collectsOf = (paymentName: string | undefined) =>
      sim
        .transactions(0, Number.MAX_SAFE_INTEGER)
        .filter((tx) => tx.merchantReference === paymentName?.split("/").pop());
    const lost = await invoiceOf(t, admin, patient, [12_000n]);
    sim.outage = "lose-answers";
    const first = (await pay(patient, lost.name)).payment;
    sim.outage = undefined;
    expect(first).toMatchObject({ state: Payment_State.PENDING, providerReference: "" });
    expect(collectsOf(first?.name)).toHaveLength(1);
    await t.app.billing.pollPayments();
    await sim.tick();
    const found = (await billing(t, patient).getPayment({ name: first?.name ?? "" })).payment;
    expect(found?.state).toBe(Payment_State.SUCCEEDED);
    expect(found?.providerReference).toBe(collectsOf(first?.name)[0]?.reference);
    expect(collectsOf(first?.name)).toHaveLength(1);

    const down = await invoiceOf(t, admin, patient, [13_000n]);
    sim.outage = "down";
    const second = (await pay(patient, down.name)).payment;
    expect(collectsOf(second?.name)).toHaveLength(0);
    await t.app.billing.pollPayments();
    sim.outage = undefined;
    await t.app.billing.pollPayments();
    await sim.tick();
    expect((await billing(t, patient).getPayment({ name: second?.name ?? "" })).payment?.state).toBe(
      Payment_State.SUCCEEDED,
    );
    expect(collectsOf(second?.name)).toHaveLength(1);
  });

  it("TST-PT008-5 a refund for a cancelled consultation goes back the same way, once", async () => {
    const invoice = await invoiceOf(t, admin, patient, [40_000n]); // patient total ₹94.40
    const payment = (await pay(patient, invoice.name)).payment;
    await provider(t).tick();
    const name = payment?.name ?? "";
    expect(
      await refusal(billing(t, patient).refundPayment({ name, reason: "mine", requestId: randomUUID() })),
    ).toMatchObject({
      code: Code.PermissionDenied,
    });
    const requestId = randomUUID();
    const refunded = (await billing(t, admin).refundPayment({ name, reason: "consultation cancelled", requestId }))
      .payment;
    expect(refunded).toMatchObject({ state: Payment_State.SUCCEEDED, amountRefunded: { amountMinor: 9_440n } });
    expect(refunded?.refunds).toHaveLength(1);
    expect(refunded?.refunds[0]).toMatchObject({
      state: Refund_State.SUCCEEDED,
      reason: "consultation cancelled",
      requestedBy: { role: ActorRole.ADMIN },
    });
    expect(refunded?.refunds[0]?.providerReference).toMatch(/^rfd_/);
    // A retry refunds nothing more; more than remains is refused.
    const retried = (await billing(t, admin).refundPayment({ name, reason: "consultation cancelled", requestId }))
      .payment;
    expect(retried?.refunds).toHaveLength(1);
    expect(
      await refusal(billing(t, admin).refundPayment({ name, reason: "again", requestId: randomUUID() })),
    ).toMatchObject({ code: Code.FailedPrecondition, reason: "REFUND_EXCEEDS_PAYMENT" });
    expect((await billing(t, patient).getInvoice({ name: invoice.name })).invoice).toMatchObject({
      state: Invoice_State.REFUNDED,
      amountRefunded: { amountMinor: 9_440n },
      amountDue: { amountMinor: 0n },
    });
    const atProvider = provider(t)
      .transactions(0, Number.MAX_SAFE_INTEGER)
      .filter((tx) => tx.kind === "refund" && tx.reference === refunded?.refunds[0]?.providerReference);
    expect(atProvider).toMatchObject([{ amountMinor: "9440", status: "SUCCEEDED" }]);
    expect(await auditReasons(t, name)).toEqual([
      "PAYMENT_CREATED",
      "PAYMENT_AUTHORIZED",
      "PAYMENT_SUCCEEDED",
      "REFUND_REQUESTED",
      "PAYMENT_REFUNDED",
    ]);
    expect(await billingTitles(patient)).toContain("Refund sent");
    // The audit chain holding every payment event is intact.
    const { verification } = await createClient(
      AuditService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [admin.interceptor] }),
    ).verifyAuditChain({});
    expect(verification?.intact).toBe(true);
  });

  it("TST-PT008-5 a consultation charged at booking and cancelled later is refunded by the system, once", async () => {
    const booked = await bookFirstFree(consultations(t, patient), patient.patient, clock, { fromMs: 2 * 86_400_000 });
    // The Doctor Service charges the booking in advance (a service token in production; an admin here).
    const { charge } = await billing(t, admin).createCharge({
      parent: patient.patient,
      charge: {
        kind: ChargeKind.CONSULTATION,
        sourceResource: booked.consultation.name,
        description: "Video consultation, Dr. Asha Rao",
        amount: { amountMinor: 80_000n, currencyCode: "INR" },
      },
      requestId: randomUUID(),
    });
    const invoice = (await billing(t, patient).listInvoices({ parent: patient.patient })).invoices[0];
    expect(invoice?.lineItems.map((line) => line.charge)).toEqual([charge?.name]);
    const payment = (await pay(patient, invoice?.name ?? "")).payment; // ₹188.80
    await provider(t).tick();
    await consultations(t, patient).cancelConsultation({ name: booked.consultation.name, reason: "feeling better" });
    await t.app.billing.rollUpInvoices();
    await t.app.billing.rollUpInvoices();
    const refunded = (await billing(t, patient).getPayment({ name: payment?.name ?? "" })).payment;
    expect(refunded?.refunds).toHaveLength(1);
    expect(refunded?.refunds[0]).toMatchObject({
      state: Refund_State.SUCCEEDED,
      amount: { amountMinor: 18_880n },
      reason: "consultation cancelled",
      requestedBy: { role: ActorRole.SYSTEM },
    });
    expect((await billing(t, patient).getInvoice({ name: invoice?.name ?? "" })).invoice).toMatchObject({
      state: Invoice_State.REFUNDED,
      amountDue: { amountMinor: 0n },
    });
    expect(await auditReasons(t, payment?.name ?? "")).toContain("PAYMENT_REFUNDED");
  });

  it("TST-PT008-8 reconciliation agrees with the provider, then finds planted mismatches", async () => {
    const run = async () => reconcileScript(t, clock);
    const clean = await run();
    expect(clean.stdout).toMatch(/ 0 differences/);
    expect(clean.code).toBe(0);

    const [succeeded, other] = await sql<{ id: string }>(
      t,
      `select "id" from "billing_payments" where "state" = 'succeeded' order by "created_at" limit 2`,
    );
    await sql(t, `update "billing_payments" set "amount_minor" = "amount_minor" + 1 where "id" = $1`, [succeeded?.id]);
    await sql(t, `update "billing_payments" set "state" = 'failed' where "id" = $1`, [other?.id]);
    const foreign = provider(t).createCollect({
      merchantReference: randomUUID(),
      amountMinor: "100",
      currency: "INR",
      vpa: "someone@sim",
      expireAfterSeconds: 600,
      callbackUrl: "",
    });
    const found = await run();
    expect(found.code).toBe(1);
    expect(found.stdout).toContain(`DIFFERENCE amount_differs payment ${succeeded?.id}`);
    expect(found.stdout).toContain(`DIFFERENCE status_differs payment ${other?.id}`);
    expect(found.stdout).toContain(`ours=failed theirs=succeeded`);
    expect(found.stdout).toContain(
      `DIFFERENCE unknown_to_us payment ${foreign.merchantReference} provider_reference=${foreign.reference}`,
    );
    expect(found.stdout).toMatch(/ 3 differences/);
  }, 60_000);
});

async function reconcileScript(app: TestApp, at: ShiftedClock): Promise<{ code: number | null; stdout: string }> {
  const keys = join(app.dataDir, "keys");
  const now = at.now().getTime();
  const child = spawn(
    process.execPath,
    [
      "scripts/billing-reconcile.ts",
      "--from",
      new Date(now - 86_400_000).toISOString(),
      "--to",
      new Date(now + 60_000).toISOString(),
    ],
    {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: app.database.url,
        PAYMENT_PROVIDER_URL: app.app.billing.providerSimulator?.url,
        PAYMENT_PROVIDER_NAME: "upi-sim",
        PAYMENT_PROVIDER_API_KEY_FILE: join(keys, "payment-provider-api.key"),
        PAYMENT_WEBHOOK_SECRET_FILE: join(keys, "payment-webhook.key"),
        DATA_DIR: app.dataDir,
        LOG_LEVEL: "silent",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += String(chunk);
  });
  child.stderr.on("data", (chunk) => {
    stderr += String(chunk);
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code === 2) throw new Error(`billing:reconcile failed: ${stderr}`);
  return { code, stdout };
}

/** Every element opened is closed, in order (void elements written `<x />`): the document is well-formed. */
function expectBalancedTags(html: string): void {
  const stack: string[] = [];
  for (const match of html.replace(/<!DOCTYPE[^>]*>/i, "").matchAll(/<(\/?)([a-z][a-z0-9]*)([^>]*?)(\/?)>/g)) {
    const [, closing, tag = "", , selfClosing] = match;
    if (selfClosing) continue;
    if (closing) expect(stack.pop()).toBe(tag);
    else stack.push(tag);
  }
  expect(stack).toEqual([]);
  expect(html).not.toMatch(/&(?!#\d+;|amp;|lt;|gt;|quot;)/);
}

/** A PDF header, trailer, and a cross-reference table whose offsets point at their objects. */
function expectValidPdf(pdf: Buffer): void {
  const text = pdf.toString("latin1");
  expect(text.startsWith("%PDF-1.4\n")).toBe(true);
  expect(text.endsWith("%%EOF\n")).toBe(true);
  const startxref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)?.[1]);
  expect(text.slice(startxref, startxref + 4)).toBe("xref");
  const offsets = [...text.slice(startxref).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) => Number(m[1]));
  expect(offsets.map((offset) => text.slice(offset, offset + 7))).toEqual(
    offsets.map((_, index) => `${index + 1} 0 obj`),
  );
  expect(offsets.length).toBe(5);
}
