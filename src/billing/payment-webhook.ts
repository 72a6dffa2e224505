import type { Logger } from "../observability/logger.ts";
import { type HttpRequest, type PlainHttpRoute, sendBody } from "../server/http-types.ts";
import type { Clock } from "../shared/clock.ts";
import type { PaymentProvider } from "./payment-provider.ts";
import type { Payments } from "./payments.ts";

/** Where the provider posts its callbacks, on the service port. */
export const paymentWebhookPath = "/webhooks/payments/upi";

const maxBodyBytes = 64 * 1024;

/**
 * The payment provider's callback: a plain HTTP POST on the service port, outside the
 * RPC pipeline (the provider has no token), authenticated by its HMAC signature over
 * the timestamp and the exact body (`PaymentProvider.parseCallback`). Answers:
 * 204 applied or knowingly ignored (a duplicate, an older status, an unknown collect),
 * 401 bad signature, 400 bad body, 503 when it could not be stored (the provider
 * retries, and the ledger makes the retry harmless).
 */
export function paymentWebhook(deps: {
  provider: PaymentProvider;
  payments: Payments;
  clock: Clock;
  logger: Logger;
}): PlainHttpRoute {
  return {
    method: "POST",
    path: paymentWebhookPath,
    async handle(req, res) {
      let body: string;
      try {
        body = await readBody(req);
      } catch {
        return sendBody(res, 413, "text/plain", "body too large\n");
      }
      let event: ReturnType<PaymentProvider["parseCallback"]>;
      try {
        event = deps.provider.parseCallback(req.headers, body, deps.clock.now());
      } catch {
        return sendBody(res, 400, "text/plain", "malformed event\n");
      }
      if (event === undefined) {
        deps.logger.warn({ path: paymentWebhookPath }, "payment callback with a bad or stale signature refused");
        return sendBody(res, 401, "text/plain", "bad signature\n");
      }
      try {
        const outcome = await deps.payments.applyCallback(event);
        res.writeHead(204, { "x-event-outcome": outcome });
        res.end();
      } catch (error) {
        deps.logger.error(
          { err: { type: (error as Error).name }, eventId: event.eventId },
          "payment callback not applied",
        );
        sendBody(res, 503, "text/plain", "try again\n");
      }
    },
  };
}

async function readBody(req: HttpRequest): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw new Error("too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
