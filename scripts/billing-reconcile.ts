/**
 * `npm run billing:reconcile`: compares our payment ledger (payments and refunds in
 * PostgreSQL) with the payment provider's transactions report over a window, and
 * reports every difference: a collect or refund one side has and the other has not, or
 * whose amount, currency or status differs (src/billing/reconciliation.ts). It changes
 * nothing.
 *
 * Environment: the service's (DATABASE_URL, PAYMENT_PROVIDER_URL, PAYMENT_PROVIDER_NAME,
 * PAYMENT_PROVIDER_API_KEY_FILE, PAYMENT_WEBHOOK_SECRET_FILE). PAYMENT_PROVIDER_URL is
 * required: the embedded simulator lives inside the running service (its address is in
 * the service's log, its key under DATA_DIR/keys).
 * Options: --from <ISO time> (default 24 hours ago), --to <ISO time> (default now), --json.
 *
 * Prints a summary and one line per difference. Exit codes: 0 ledgers agree, 1 differences
 * found, 2 bad configuration or the run failed.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { BillingStore } from "../src/billing/billing-store.ts";
import { HttpUpiProvider } from "../src/billing/http-upi-provider.ts";
import { reconcile } from "../src/billing/reconciliation.ts";
import { createLogger } from "../src/observability/logger.ts";
import { scriptConfig, withDatabase } from "./script-database.ts";

class UsageError extends Error {}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { from: { type: "string" }, to: { type: "string" }, json: { type: "boolean" } },
  });
  const config = scriptConfig();
  if (config === undefined) return 2;
  const settings = config.billing;
  if (settings.providerUrl === undefined) throw new UsageError("PAYMENT_PROVIDER_URL is required");
  const to = time("--to", values.to, new Date());
  const from = time("--from", values.from, new Date(to.getTime() - 86_400_000));
  if (from >= to) throw new UsageError("--from must be before --to");
  const provider = new HttpUpiProvider({
    name: settings.providerName,
    baseUrl: settings.providerUrl,
    apiKey: Buffer.from((await readFile(settings.apiKeyFile, "utf8")).trim(), "utf8"),
    webhookSecret: Buffer.from((await readFile(settings.webhookSecretFile, "utf8")).trim(), "utf8"),
    toleranceSeconds: settings.webhookToleranceSeconds,
  });
  const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel);
  const report = await withDatabase(config, logger, (orm) =>
    reconcile(orm.em.fork(), new BillingStore(), provider, from, to),
  );
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(
      `reconciliation ${from.toISOString()} .. ${to.toISOString()} (${settings.providerName}): ` +
        `${report.paymentsChecked} payments and ${report.refundsChecked} refunds of ours, ` +
        `${report.providerTransactions} provider transactions, ${report.differences.length} differences\n`,
    );
    for (const d of report.differences) {
      process.stdout.write(
        `DIFFERENCE ${d.kind} ${d.what} ${d.id} provider_reference=${d.providerReference || "-"} ours=${d.ours || "-"} theirs=${d.theirs || "-"}\n`,
      );
    }
  }
  return report.differences.length === 0 ? 0 : 1;
}

function time(name: string, value: string | undefined, fallback: Date): Date {
  if (value === undefined) return fallback;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) throw new UsageError(`${name} must be an ISO time`);
  return parsed;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`billing:reconcile failed: ${error instanceof UsageError ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
