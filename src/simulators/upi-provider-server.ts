import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "../shared/clock.ts";
import { SeededRandom } from "./seeded-random.ts";
import { UpiApiError, UpiProviderSimulator } from "./upi-provider-simulator.ts";

/** The simulated UPI provider serving its HTTP API on a port. */
export interface RunningUpiProvider {
  readonly simulator: UpiProviderSimulator;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Options of `startUpiProvider`. */
export interface UpiProviderServerOptions {
  readonly clock: Clock;
  /** The bearer key callers must present. */
  readonly apiKey: Buffer;
  /** Signs callbacks. */
  readonly webhookSecret: Buffer;
  /** How often due steps are applied and callbacks delivered (0: only on `simulator.tick()`). */
  readonly tickMs: number;
  /** Duration of each step of a successful collect. */
  readonly stepMs: number;
  readonly port?: number;
  readonly host?: string;
  readonly seed?: number;
}

/**
 * Starts the UPI provider simulator as a real HTTP server (src/billing/upi-wire.ts is
 * the API): `POST /v1/collects`, `GET /v1/collects/{reference}`, `POST /v1/refunds`,
 * `GET /v1/transactions?from=&to=` (ISO times), each with `Authorization: Bearer <key>`.
 */
export async function startUpiProvider(options: UpiProviderServerOptions): Promise<RunningUpiProvider> {
  const simulator = new UpiProviderSimulator({
    clock: options.clock,
    random: new SeededRandom(options.seed),
    webhookSecret: options.webhookSecret,
    stepMs: options.stepMs,
  });
  const server = createServer((req, res) => {
    handle(simulator, options.apiKey, req, res).catch((error: unknown) => {
      const known = error instanceof UpiApiError ? error : new UpiApiError(500, "INTERNAL", "internal error");
      send(res, known.status, { error: { code: known.code, message: known.message } });
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  let ticking: Promise<void> = Promise.resolve();
  const timer =
    options.tickMs > 0
      ? setInterval(() => {
          ticking = ticking.then(() => simulator.tick()).catch(() => undefined);
        }, options.tickMs)
      : undefined;
  timer?.unref();
  return {
    simulator,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      await ticking;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function handle(sim: UpiProviderSimulator, apiKey: Buffer, req: IncomingMessage, res: ServerResponse) {
  const presented = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "");
  if (presented.length !== apiKey.length || !timingSafeEqual(presented, apiKey)) {
    throw new UpiApiError(401, "UNAUTHENTICATED", "A valid API key is required.");
  }
  if (sim.outage === "down") throw new UpiApiError(503, "UNAVAILABLE", "The provider is down.");
  const answer = await route(sim, req);
  if (sim.outage === "lose-answers") throw new UpiApiError(503, "UNAVAILABLE", "The answer was lost.");
  send(res, 200, answer);
}

/** The API's routes: what each answers. */
async function route(sim: UpiProviderSimulator, req: IncomingMessage): Promise<unknown> {
  const url = new URL(req.url ?? "/", "http://simulator");
  const collect = /^\/v1\/collects\/([A-Za-z0-9_-]{1,128})$/.exec(url.pathname);
  if (req.method === "POST" && url.pathname === "/v1/collects") {
    const body = await jsonBody(req);
    return {
      collect: sim.createCollect({
        merchantReference: text(body.merchantReference),
        amountMinor: text(body.amountMinor),
        currency: text(body.currency),
        vpa: text(body.vpa),
        expireAfterSeconds: Number(body.expireAfterSeconds) || 600,
        callbackUrl: text(body.callbackUrl),
      }),
    };
  }
  if (req.method === "GET" && collect !== null) return { collect: sim.getCollect(collect[1] as string) };
  if (req.method === "POST" && url.pathname === "/v1/refunds") {
    const body = await jsonBody(req);
    const refund = sim.refund({
      merchantRefundId: text(body.merchantRefundId),
      collectReference: text(body.collectReference),
      amountMinor: text(body.amountMinor),
      currency: text(body.currency),
    });
    return { refund };
  }
  if (req.method === "GET" && url.pathname === "/v1/transactions") {
    const from = Date.parse(url.searchParams.get("from") ?? "");
    const to = Date.parse(url.searchParams.get("to") ?? "");
    if (Number.isNaN(from) || Number.isNaN(to)) {
      throw new UpiApiError(400, "INVALID_RANGE", "from and to are ISO times.");
    }
    return { transactions: sim.transactions(from, to) };
  }
  throw new UpiApiError(404, "NOT_FOUND", "No such route.");
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 65_536) throw new UpiApiError(413, "TOO_LARGE", "Body too large.");
    chunks.push(chunk as Buffer);
  }
  try {
    const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    if (typeof parsed === "object" && parsed !== null) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new UpiApiError(400, "MALFORMED_JSON", "The body is not a JSON object.");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
