import { join } from "node:path";
import type { EnvReader } from "../config/env-readers.ts";
import type { ChargeKindName, TaxRule } from "./invoice-rules.ts";
import { chargeKinds } from "./invoice-rules.ts";
import { currencies } from "./money.ts";

/** A price from the price list: what a charge of a kind costs when its producer names no amount. */
export interface ListPrice {
  readonly amountMinor: bigint;
  readonly currency: string;
}

/** Settings of billing and payments (documented in .env.example and the README). */
export interface BillingConfig {
  /** PAYMENT_PROVIDER_URL: the UPI payment provider's API; undefined starts the embedded simulator (only with `simulator: "embedded"`). */
  readonly providerUrl: string | undefined;
  /**
   * PAYMENT_SIMULATOR: `embedded` allows the in-process UPI provider simulator when no
   * PAYMENT_PROVIDER_URL is set. Default: what SIMULATORS is, so a production-shaped
   * deployment (every sibling URL set) must name a real provider or opt in explicitly.
   */
  readonly simulator: "embedded" | "off";
  /** PAYMENT_PROVIDER_NAME: stored with each payment; `upi` with a PAYMENT_PROVIDER_URL, `upi-sim` for the simulator. */
  readonly providerName: string;
  /** PAYMENT_PROVIDER_API_KEY_FILE: the key our calls to the provider carry; default DATA_DIR/keys/payment-provider-api.key. */
  readonly apiKeyFile: string;
  /** PAYMENT_WEBHOOK_SECRET_FILE: the provider's callback signing secret; default DATA_DIR/keys/payment-webhook.key. */
  readonly webhookSecretFile: string;
  /** Both key files were configured (they must exist; never generated for a real provider). */
  readonly secretsConfigured: boolean;
  /** PAYMENT_CALLBACK_BASE_URL: how the provider reaches this service; default the listening address. */
  readonly callbackBaseUrl: string | undefined;
  /** PAYMENT_WEBHOOK_TOLERANCE_SECONDS: how old a callback's signed timestamp may be. */
  readonly webhookToleranceSeconds: number;
  /** PAYMENT_COLLECT_EXPIRY_SECONDS: how long a collect request waits for the payer. */
  readonly collectExpirySeconds: number;
  /** PAYMENT_POLL_INTERVAL_MS: how often open payments are polled at the provider (0: never; GetPayment still polls). */
  readonly pollIntervalMs: number;
  /** PAYMENT_POLL_AFTER_SECONDS: an open payment is polled once it has had no news for this long. */
  readonly pollAfterSeconds: number;
  /** PAYMENT_SIMULATOR_TICK_MS: how often the embedded provider simulator moves its collects on (0: only when told, tests). */
  readonly simulatorTickMs: number;
  /** BILLING_TAXES: taxes on every line, `NAME=basis points,…` (empty: none). */
  readonly taxes: readonly TaxRule[];
  /** BILLING_INSURANCE_COVERAGE_BASIS_POINTS: the insurer's share of a line when the patient has a valid policy. */
  readonly coverageBasisPoints: number;
  /** BILLING_INVOICE_DUE_DAYS: days from issue to the due date. */
  readonly invoiceDueDays: number;
  /** BILLING_PRICE_LIST: prices of charge kinds whose producer names no amount, `kind=CUR:minor,…`. */
  readonly priceList: ReadonlyMap<ChargeKindName, ListPrice>;
  /** BILLING_INVOICE_INTERVAL_MS: how often pending charges roll up into invoices (0: never; ListInvoices still does). */
  readonly invoiceIntervalMs: number;
}

/**
 * Reads the billing settings; problems are recorded on `read`. `simulators` is the
 * resolved SIMULATORS setting: the default of PAYMENT_SIMULATOR.
 */
export function readBillingConfig(read: EnvReader, dataDir: string, simulators: "embedded" | "off"): BillingConfig {
  const apiKeyFile = read.raw("PAYMENT_PROVIDER_API_KEY_FILE");
  const webhookSecretFile = read.raw("PAYMENT_WEBHOOK_SECRET_FILE");
  const providerUrl = read.url("PAYMENT_PROVIDER_URL", ["http", "https"]);
  const simulator = readSimulator(read, providerUrl, simulators);
  if (providerUrl !== undefined && (apiKeyFile === undefined || webhookSecretFile === undefined)) {
    read.problem(
      "PAYMENT_PROVIDER_URL",
      "needs PAYMENT_PROVIDER_API_KEY_FILE and PAYMENT_WEBHOOK_SECRET_FILE (a real provider's secrets are never generated)",
    );
  }
  const configured =
    apiKeyFile !== undefined &&
    webhookSecretFile !== undefined &&
    read.readableFile("PAYMENT_PROVIDER_API_KEY_FILE") !== undefined &&
    read.readableFile("PAYMENT_WEBHOOK_SECRET_FILE") !== undefined;
  const providerName = read.raw("PAYMENT_PROVIDER_NAME") ?? (providerUrl === undefined ? "upi-sim" : "upi");
  if (!/^[a-z][a-z0-9-]{1,31}$/.test(providerName)) {
    read.problem(
      "PAYMENT_PROVIDER_NAME",
      "must be 2 to 32 lower-case letters, digits or dashes, starting with a letter",
    );
  }
  return Object.freeze({
    providerUrl,
    simulator,
    providerName,
    apiKeyFile: apiKeyFile ?? join(dataDir, "keys", "payment-provider-api.key"),
    webhookSecretFile: webhookSecretFile ?? join(dataDir, "keys", "payment-webhook.key"),
    secretsConfigured: configured,
    callbackBaseUrl: read.url("PAYMENT_CALLBACK_BASE_URL", ["http", "https"]),
    webhookToleranceSeconds: read.integer("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", 300, 10, 3600),
    collectExpirySeconds: read.integer("PAYMENT_COLLECT_EXPIRY_SECONDS", 600, 60, 86_400),
    pollIntervalMs: read.integer("PAYMENT_POLL_INTERVAL_MS", 10_000, 0, 3_600_000),
    pollAfterSeconds: read.integer("PAYMENT_POLL_AFTER_SECONDS", 30, 0, 86_400),
    simulatorTickMs: read.integer("PAYMENT_SIMULATOR_TICK_MS", 500, 0, 60_000),
    taxes: readTaxes(read),
    coverageBasisPoints: read.integer("BILLING_INSURANCE_COVERAGE_BASIS_POINTS", 8000, 0, 10_000),
    invoiceDueDays: read.integer("BILLING_INVOICE_DUE_DAYS", 15, 0, 365),
    priceList: readPriceList(read),
    invoiceIntervalMs: read.integer("BILLING_INVOICE_INTERVAL_MS", 60_000, 0, 86_400_000),
  });
}

/**
 * PAYMENT_SIMULATOR. The simulator approves every collect and calls back as the provider
 * would, so invoices end PAID with no money moved: outside a development stack that is
 * a silent loss, so without PAYMENT_PROVIDER_URL it needs SIMULATORS=embedded (the
 * default unless every sibling has a URL) or an explicit PAYMENT_SIMULATOR=embedded.
 */
function readSimulator(
  read: EnvReader,
  providerUrl: string | undefined,
  simulators: "embedded" | "off",
): "embedded" | "off" {
  const explicit = read.raw("PAYMENT_SIMULATOR") !== undefined;
  const simulator = read.oneOf("PAYMENT_SIMULATOR", ["embedded", "off"], simulators);
  if (providerUrl === undefined && simulator === "off") {
    read.problem(
      "PAYMENT_PROVIDER_URL",
      `is required when ${explicit ? "PAYMENT_SIMULATOR" : "SIMULATORS"}=off: without it the embedded UPI simulator would mark invoices paid with no money moved (a development stack opts in with PAYMENT_SIMULATOR=embedded)`,
    );
  }
  if (providerUrl !== undefined && explicit && simulator === "embedded") {
    read.problem(
      "PAYMENT_SIMULATOR",
      "must not be embedded when PAYMENT_PROVIDER_URL names a provider (set one or the other)",
    );
  }
  return simulator;
}

function readTaxes(read: EnvReader): readonly TaxRule[] {
  const raw = read.raw("BILLING_TAXES") ?? "CGST=900,SGST=900";
  if (raw === "none") return Object.freeze([]);
  const rules: TaxRule[] = [];
  for (const part of raw.split(",").map((item) => item.trim())) {
    const match = /^([A-Z][A-Z0-9_-]{0,15})=(\d{1,5})$/.exec(part);
    const basisPoints = Number(match?.[2]);
    if (match === null || basisPoints > 10_000) {
      read.problem("BILLING_TAXES", "must be NAME=basis points pairs like CGST=900,SGST=900 (or none)");
      return Object.freeze([]);
    }
    rules.push({ name: match[1] as string, basisPoints });
  }
  return Object.freeze(rules);
}

function readPriceList(read: EnvReader): ReadonlyMap<ChargeKindName, ListPrice> {
  const raw = read.raw("BILLING_PRICE_LIST") ?? "emergency_transport=INR:250000,xray=INR:120000";
  const prices = new Map<ChargeKindName, ListPrice>();
  if (raw === "none") return prices;
  for (const part of raw.split(",").map((item) => item.trim())) {
    const match = /^([a-z_]+)=([A-Z]{3}):(\d{1,13})$/.exec(part);
    const kind = match?.[1] as ChargeKindName | undefined;
    if (match === null || kind === undefined || !chargeKinds.includes(kind) || !currencies.has(match[2] as string)) {
      read.problem(
        "BILLING_PRICE_LIST",
        `must be kind=CUR:minor pairs like xray=INR:120000 (kinds: ${chargeKinds.join(", ")})`,
      );
      return new Map();
    }
    prices.set(kind, { currency: match[2] as string, amountMinor: BigInt(match[3] as string) });
  }
  return prices;
}
