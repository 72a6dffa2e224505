import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { BillingService } from "../../gen/telemed/patient/v1/billing_service_pb.js";
import { billingService } from "../billing/billing-handlers.ts";
import { CancellationRefunds } from "../billing/cancellation-refunds.ts";
import { BillingStore } from "../billing/billing-store.ts";
import { HttpUpiProvider } from "../billing/http-upi-provider.ts";
import { Invoicing } from "../billing/invoicing.ts";
import { PaymentEvents } from "../billing/payment-events.ts";
import { BillingWorker } from "../billing/payment-poller.ts";
import { paymentWebhook, paymentWebhookPath } from "../billing/payment-webhook.ts";
import { Payments } from "../billing/payments.ts";
import { Receipts } from "../billing/receipt-service.ts";
import type { PlainHttpRoute } from "../server/http-types.ts";
import { type RunningUpiProvider, startUpiProvider } from "../simulators/upi-provider-server.ts";
import type { AppContext, StartedPart } from "./app-context.ts";
import type { NotificationsPart } from "./notifications-part.ts";

/** The billing context, started. */
export interface BillingPart extends StartedPart {
  /** The provider's webhook, served on the service port. */
  readonly plainRoutes: readonly PlainHttpRoute[];
  /** The embedded UPI provider simulator (no PAYMENT_PROVIDER_URL); tests drive it. */
  readonly providerSimulator: RunningUpiProvider | undefined;
  /** Tells billing the port the service listens on (the callback URL when PAYMENT_CALLBACK_BASE_URL is unset). */
  listening(port: number): void;
  /** One polling round of open payments (what the timer runs). */
  pollPayments(): Promise<void>;
  /** One round of invoicing: cancelled consultations' charges voided or refunded, pending charges rolled up (what the timer runs). */
  rollUpInvoices(): Promise<void>;
}

/** Who the receipts name as the payee. */
const payeeName = "Telemed Patient Service";

/**
 * Starts billing and payments (issue #7, RQ-PT008): charges, invoices with taxes and
 * insurance, UPI payments through a `PaymentProvider`, its signed webhook, polling,
 * refunds and receipts. Without PAYMENT_PROVIDER_URL (allowed only in development:
 * SIMULATORS=embedded or PAYMENT_SIMULATOR=embedded) the UPI provider simulator starts
 * as a real HTTP server (src/simulators/upi-provider-server.ts), with API key and
 * webhook secret generated once under DATA_DIR/keys, as the other development keys are.
 */
export async function startBilling(context: AppContext, notifications: NotificationsPart): Promise<BillingPart> {
  const { config, logger, orm, clock, security } = context;
  const settings = config.billing;
  const log = logger.child({ component: "billing" });
  const em = () => orm.em.fork();
  const create = !settings.secretsConfigured;
  const apiKey = await secretFile(settings.apiKeyFile, create);
  const webhookSecret = await secretFile(settings.webhookSecretFile, create);
  // loadConfig refuses a missing PAYMENT_PROVIDER_URL unless the simulator was allowed
  // (SIMULATORS=embedded, or PAYMENT_SIMULATOR=embedded): checked again here, so no
  // other way of building the configuration can start simulated money by accident.
  if (settings.providerUrl === undefined && settings.simulator !== "embedded") {
    throw new Error(
      "no PAYMENT_PROVIDER_URL and the UPI provider simulator is not allowed (PAYMENT_SIMULATOR=embedded)",
    );
  }
  const simulator =
    settings.providerUrl === undefined
      ? await startUpiProvider({
          clock,
          apiKey,
          webhookSecret,
          tickMs: settings.simulatorTickMs,
          // A developer sees a payment pending, then approved, then settled; tests step it themselves.
          stepMs: settings.simulatorTickMs > 0 ? 2000 : 0,
        })
      : undefined;
  if (simulator !== undefined) {
    log.warn(
      { url: simulator.url },
      "UPI PROVIDER SIMULATOR: no PAYMENT_PROVIDER_URL, payments are simulated and no money moves. For development and tests only.",
    );
  }
  const provider = new HttpUpiProvider({
    name: settings.providerName,
    baseUrl: settings.providerUrl ?? simulator?.url ?? "",
    apiKey,
    webhookSecret,
    toleranceSeconds: settings.webhookToleranceSeconds,
  });
  let callbackBase = settings.callbackBaseUrl ?? "";
  const store = new BillingStore();
  const patientOf = (patientId: string) => context.patients.get(patientId);
  const events = new PaymentEvents({
    em,
    store,
    provider: provider.name,
    audit: security.audit,
    notifier: notifications.notifier,
    clock,
    logger: log,
  });
  const payments = new Payments({
    em,
    store,
    provider,
    events,
    patientOf,
    clock,
    logger: log,
    box: security.auth.secretBox,
    callbackUrl: () => (callbackBase === "" ? "" : new URL(paymentWebhookPath, callbackBase).toString()),
    collectExpirySeconds: settings.collectExpirySeconds,
  });
  const invoicing = new Invoicing({ em, store, patientOf, clock, box: security.auth.secretBox, settings });
  const cancellations = new CancellationRefunds({ em, store, payments, clock, logger: log });
  const worker = new BillingWorker({
    em,
    store,
    payments,
    invoicing,
    cancellations,
    clock,
    logger: log,
    pollIntervalMs: settings.pollIntervalMs,
    pollAfterSeconds: settings.pollAfterSeconds,
    invoiceIntervalMs: settings.invoiceIntervalMs,
  });
  worker.start();
  return {
    registrations: [
      {
        service: BillingService,
        impl: billingService({
          invoicing,
          payments,
          receipts: new Receipts(em, store, patientOf, payeeName, security.auth.secretBox),
        }),
      },
    ],
    plainRoutes: [paymentWebhook({ provider, payments, clock, logger: log })],
    providerSimulator: simulator,
    listening(port) {
      if (settings.callbackBaseUrl === undefined) callbackBase = `http://127.0.0.1:${port}`;
    },
    pollPayments: () => worker.pollOnce(),
    rollUpInvoices: () => worker.invoiceOnce(),
    async close() {
      await worker.close();
      await simulator?.stop();
    },
  };
}

/** A secret kept in a file (trimmed text); created with 32 random bytes (base64url) when allowed and missing. */
async function secretFile(path: string, create: boolean): Promise<Buffer> {
  try {
    return Buffer.from((await readFile(path, "utf8")).trim(), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT" || !create) throw error;
  }
  const secret = randomBytes(32).toString("base64url");
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${secret}\n`, { mode: 0o600, flag: "wx" }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  return Buffer.from((await readFile(path, "utf8")).trim(), "utf8");
}
