import { randomUUID } from "node:crypto";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { ChargeKind, type Invoice } from "../../gen/telemed/patient/v1/billing_pb.js";
import { BillingService } from "../../gen/telemed/patient/v1/billing_service_pb.js";
import type { UpiProviderSimulator } from "../../src/simulators/upi-provider-simulator.ts";
import type { TestSession } from "../support/auth-fixtures.ts";
import type { TestApp } from "../support/test-app.ts";

/** The test app's settings for billing: the simulator and the background work move only when a test says so. */
export const billingTestEnv = {
  PAYMENT_SIMULATOR_TICK_MS: "0",
  PAYMENT_POLL_INTERVAL_MS: "0",
  PAYMENT_POLL_AFTER_SECONDS: "0",
  BILLING_INVOICE_INTERVAL_MS: "0",
  PAYMENT_COLLECT_EXPIRY_SECONDS: "600",
  BILLING_TAXES: "CGST=900,SGST=900",
  BILLING_INSURANCE_COVERAGE_BASIS_POINTS: "8000",
};

export type BillingClient = Client<typeof BillingService>;

/** A BillingService client acting as `session`, over Connect. */
export function billing(t: TestApp, session: TestSession): BillingClient {
  return createClient(
    BillingService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
  );
}

/** The embedded UPI provider simulator of the app. */
export function provider(t: TestApp): UpiProviderSimulator {
  const simulator = t.app.billing.providerSimulator?.simulator;
  if (simulator === undefined) throw new Error("the test app has no UPI provider simulator");
  return simulator;
}

/** Charges `amounts` (INR minor units) to the patient as `admin`, then returns the invoice they roll up into. */
export async function invoiceOf(
  t: TestApp,
  admin: TestSession,
  patient: TestSession,
  amounts: readonly bigint[],
): Promise<Invoice> {
  for (const amountMinor of amounts) {
    await billing(t, admin).createCharge({
      parent: patient.patient,
      charge: {
        kind: ChargeKind.OTHER,
        sourceResource: `${patient.patient}/services/${randomUUID()}`,
        description: "Home sample collection",
        amount: { amountMinor, currencyCode: "INR" },
      },
      requestId: randomUUID(),
    });
  }
  const { invoices } = await billing(t, patient).listInvoices({ parent: patient.patient });
  const invoice = invoices[0];
  if (invoice === undefined) throw new Error("no invoice");
  return invoice;
}

/** Runs SQL on the app's database (tests read the audit log and ledger, and plant mismatches). */
export async function sql<T extends pg.QueryResultRow>(t: TestApp, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: t.database.url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** The payment-event reasons the audit log holds for a resource, oldest first. */
export async function auditReasons(t: TestApp, resource: string): Promise<string[]> {
  const rows = await sql<{ reason: string }>(
    t,
    `select "reason" from "audit_log" where "resource" = $1 and "reason" like 'PAYMENT_%' or "resource" = $1 and "reason" like 'REFUND_%' order by "sequence"`,
    [resource],
  );
  return rows.map((row) => row.reason);
}

export { guardianOf } from "../support/guardian-fixtures.ts";
