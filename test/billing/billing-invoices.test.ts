import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Charge_State, ChargeKind, Invoice_State } from "../../gen/telemed/patient/v1/billing_pb.js";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { bookFirstFree, consultations, refusal, ShiftedClock } from "../consultations/consultation-fixtures.ts";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { billing, billingTestEnv, guardianOf, invoiceOf, sql } from "./billing-fixtures.ts";

let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let other: TestSession;
let uninsured: TestSession;
let admin: TestSession;

beforeAll(async () => {
  t = await startTestApp(billingTestEnv, { clock });
  [patient, other, uninsured, admin] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    signUpPatient(t, { patient: { insurance: undefined, upiId: "" } }),
    staffSession(t, "admin"),
  ]);
}, 120_000);
afterAll(async () => {
  clock.reset();
  await t?.close();
});

/** The code, reason and field violations of a refused call. */
async function violations(call: Promise<unknown>): Promise<{ code: Code; reason: string; fields: string[] }> {
  try {
    await call;
  } catch (thrown) {
    const error = ConnectError.from(thrown);
    return {
      code: error.code,
      reason: error.findDetails(ErrorInfoSchema)[0]?.reason ?? "",
      fields: error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)),
    };
  }
  throw new Error("expected the call to be refused");
}

const chargeRequest = (
  session: TestSession,
  amount: { amountMinor: bigint; currencyCode: string } | undefined,
  kind = ChargeKind.OTHER,
) => ({
  parent: session.patient,
  charge: { kind, sourceResource: `${session.patient}/services/${randomUUID()}`, description: "Dressing", amount },
  requestId: randomUUID(),
});

describe("TST-PT008 charges and invoices", () => {
  it("records a charge once per request id and per source resource; the price list prices an X-ray", async () => {
    const request = chargeRequest(patient, { amountMinor: 12_345n, currencyCode: "INR" });
    const first = (await billing(t, admin).createCharge(request)).charge;
    expect(first).toMatchObject({ state: Charge_State.PENDING, amount: { amountMinor: 12_345n, currencyCode: "INR" } });
    expect((await billing(t, admin).createCharge(request)).charge?.name).toBe(first?.name);
    expect(await refusal(billing(t, admin).createCharge({ ...request, requestId: randomUUID() }))).toMatchObject({
      code: Code.AlreadyExists,
      reason: "CHARGE_EXISTS",
    });
    const xray = (await billing(t, admin).createCharge(chargeRequest(patient, undefined, ChargeKind.XRAY))).charge;
    expect(xray?.amount).toMatchObject({ amountMinor: 120_000n, currencyCode: "INR" });
    // Both roll up into one invoice with two lines; the charges are then INVOICED on it.
    const { invoices } = await billing(t, patient).listInvoices({ parent: patient.patient });
    expect(invoices).toHaveLength(1);
    expect(invoices[0]?.lineItems.map((line) => line.charge)).toEqual([first?.name, xray?.name]);
    expect(invoices[0]?.lineItems.map((line) => line.kind)).toEqual([ChargeKind.OTHER, ChargeKind.XRAY]);
    // A second look issues nothing new.
    expect((await billing(t, patient).listInvoices({ parent: patient.patient })).invoices).toHaveLength(1);
    // The same over REST: GET /patients/{id}/invoices, amounts as decimal strings (int64 in JSON).
    const rest = await fetch(`${t.baseUrl}/${patient.patient}/invoices`, { headers: patient.headers });
    expect(rest.status).toBe(200);
    const json = (await rest.json()) as {
      invoices: { name: string; total: { amountMinor: string; currencyCode: string } }[];
    };
    expect(json.invoices[0]).toMatchObject({ name: invoices[0]?.name, total: { currencyCode: "INR" } });
    expect(json.invoices[0]?.total.amountMinor).toBe(String(invoices[0]?.total?.amountMinor));
  });

  it("without insurance the patient's share is the whole total; lists page newest first and filter by state", async () => {
    await invoiceOf(t, admin, uninsured, [10_000n]);
    const second = await invoiceOf(t, admin, uninsured, [20_000n]);
    expect(second).toMatchObject({ total: { amountMinor: 23_600n }, patientTotal: { amountMinor: 23_600n } });
    expect(second.insurance).toBeUndefined();
    const page1 = await billing(t, uninsured).listInvoices({ parent: uninsured.patient, pageSize: 1 });
    expect(page1.invoices.map((i) => i.name)).toEqual([second.name]);
    const page2 = await billing(t, uninsured).listInvoices({
      parent: uninsured.patient,
      pageSize: 1,
      pageToken: page1.nextPageToken,
    });
    expect(page2.invoices).toHaveLength(1);
    expect(page2.nextPageToken).toBe("");
    const paid = await billing(t, uninsured).listInvoices({ parent: uninsured.patient, states: [Invoice_State.PAID] });
    expect(paid.invoices).toHaveLength(0);
    // No UPI id on the profile and none in the request.
    expect(
      await violations(
        billing(t, uninsured).createPayment({
          parent: uninsured.patient,
          payment: { invoice: second.name },
          requestId: randomUUID(),
        }),
      ),
    ).toMatchObject({ code: Code.InvalidArgument, fields: ["payment.upi_id"] });
  });

  it("an invoice shows the insurance it applied, which is sealed at rest (no policy number in the row)", async () => {
    const policyNumber = `POL-${randomUUID()}`;
    const memberId = `MEM-${randomUUID()}`;
    const insured = await signUpPatient(t, {
      patient: { insurance: { provider: "Star Health", policyNumber, memberId } },
    });
    const invoice = await invoiceOf(t, admin, insured, [10_000n]);
    expect(invoice.insurance).toMatchObject({
      provider: "Star Health",
      policyNumber,
      memberId,
      coverageBasisPoints: 8000,
    });
    const { invoice: read } = await billing(t, insured).getInvoice({ name: invoice.name });
    expect(read?.insurance).toMatchObject({ policyNumber, memberId });
    const rows = await sql<Record<string, unknown>>(t, `select * from "billing_invoices" where "patient_id" = $1`, [
      insured.patient.split("/").pop(),
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).not.toHaveProperty("insurance");
    const raw = JSON.stringify(rows);
    expect(raw).not.toContain(policyNumber);
    expect(raw).not.toContain(memberId);
    expect(raw).not.toContain("Star Health");
    // Bound to its row: the sealed copy moved to another of the patient's invoices does not open there.
    const next = await invoiceOf(t, admin, insured, [5_000n]);
    await sql(t, `update "billing_invoices" set "insurance_sealed" = $1 where "id" = $2`, [
      rows[0]?.insurance_sealed,
      next.name.split("/").pop(),
    ]);
    await expect(billing(t, insured).getInvoice({ name: next.name })).rejects.toMatchObject({ code: Code.DataLoss });
  });

  it("TST-PT008-6 another patient's invoice and payments are NOT_FOUND, by any name", async () => {
    const theirs = await invoiceOf(t, admin, other, [10_000n]);
    const theirId = theirs.name.split("/").pop();
    const mine = billing(t, patient);
    expect((await refusal(mine.getInvoice({ name: theirs.name }))).code).toBe(Code.NotFound);
    expect((await refusal(mine.listInvoices({ parent: other.patient }))).code).toBe(Code.NotFound);
    expect(await refusal(mine.getInvoice({ name: `${patient.patient}/invoices/${theirId}` }))).toMatchObject({
      code: Code.NotFound,
      reason: "INVOICE_NOT_FOUND",
    });
    expect(
      await refusal(
        mine.createPayment({
          parent: patient.patient,
          payment: { invoice: `${patient.patient}/invoices/${theirId}` },
          requestId: randomUUID(),
        }),
      ),
    ).toMatchObject({ code: Code.NotFound, reason: "INVOICE_NOT_FOUND" });
    expect(
      (
        await refusal(
          mine.createPayment({ parent: other.patient, payment: { invoice: theirs.name }, requestId: randomUUID() }),
        )
      ).code,
    ).toBe(Code.NotFound);
    expect((await refusal(mine.getPayment({ name: `${other.patient}/payments/${randomUUID()}` }))).code).toBe(
      Code.NotFound,
    );
    // A guardian without the pay grant is refused like a stranger; one with it reads.
    const viewer = await guardianOf(t, other, [FamilyGrant.VIEW_RECORDS]);
    expect((await refusal(billing(t, viewer).getInvoice({ name: theirs.name }))).code).toBe(Code.NotFound);
    const payer = await guardianOf(t, other, [FamilyGrant.PAY_BILLS]);
    expect((await billing(t, payer).getInvoice({ name: theirs.name })).invoice?.name).toBe(theirs.name);
  });

  it("TST-PT008-7 invalid amounts and currencies are INVALID_ARGUMENT, naming the field", async () => {
    const admins = billing(t, admin);
    const bad = (amountMinor: bigint, currencyCode: string) =>
      violations(admins.createCharge(chargeRequest(patient, { amountMinor, currencyCode })));
    expect(await bad(-100n, "INR")).toMatchObject({ code: Code.InvalidArgument, fields: ["charge.amount"] });
    expect(await bad(0n, "INR")).toMatchObject({ code: Code.InvalidArgument, fields: ["charge.amount"] });
    expect(await bad(100n, "inr")).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["charge.amount.currency_code"],
    });
    expect(await bad(100n, "XYZ")).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["charge.amount.currency_code"],
    });
    expect(await bad(10n ** 14n, "INR")).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["charge.amount.amount_minor"],
    });
    expect(await violations(admins.createCharge(chargeRequest(patient, undefined, ChargeKind.OTHER)))).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["charge.amount"],
    });

    const invoice = await invoiceOf(t, admin, patient, [10_000n]); // patient total 2360
    const payWith = (amount: { amountMinor: bigint; currencyCode: string }) =>
      violations(
        billing(t, patient).createPayment({
          parent: patient.patient,
          payment: { invoice: invoice.name, amount },
          requestId: randomUUID(),
        }),
      );
    expect(await payWith({ amountMinor: 0n, currencyCode: "INR" })).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["payment.amount"],
    });
    expect(await payWith({ amountMinor: 100n, currencyCode: "USD" })).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["payment.amount.currency_code"],
    });
    expect(await payWith({ amountMinor: 100n, currencyCode: "RUPEES" })).toMatchObject({
      code: Code.InvalidArgument,
    });
    expect(await payWith({ amountMinor: 2_361n, currencyCode: "INR" })).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "AMOUNT_EXCEEDS_DUE",
    });
    expect(
      await violations(
        billing(t, patient).createPayment({
          parent: patient.patient,
          payment: { invoice: invoice.name, upiId: "not a vpa" },
          requestId: randomUUID(),
        }),
      ),
    ).toMatchObject({ code: Code.InvalidArgument, fields: ["payment.upi_id"] });
  });

  it("a completed consultation is charged at the price agreed with the Doctor Service, once", async () => {
    const asha = await staffSession(t, "doctor", { doctorId: "asha-rao" });
    const booked = await bookFirstFree(consultations(t, patient), patient.patient, clock);
    clock.travelTo(new Date(booked.startMs - 5 * 60_000));
    await consultations(t, asha).startConsultation({ name: booked.consultation.name });
    await consultations(t, asha).completeConsultation({
      name: booked.consultation.name,
      summary: { chiefComplaint: "Sore throat" },
    });
    await t.app.billing.rollUpInvoices();
    await t.app.billing.rollUpInvoices();
    const { invoices } = await billing(t, patient).listInvoices({ parent: patient.patient });
    const lines = invoices.flatMap((invoice) => invoice.lineItems);
    const charged = lines.filter((line) => line.sourceResource === booked.consultation.name);
    expect(charged).toHaveLength(1);
    expect(charged[0]).toMatchObject({ kind: ChargeKind.CONSULTATION, unitPrice: booked.consultation.price });
    expect(charged[0]?.description).toMatch(/^Teleconsultation, /);
  });
});
