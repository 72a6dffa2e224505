import * as http2 from "node:http2";
import { childOptions, exitWhenParentStops, failChild, sendToParent } from "./child-ipc.ts";
import { runClosedLoop } from "./closed-loop.ts";
import { type BookingSource, bookConsultationFrames } from "./book-consultation-frames.ts";
import { createPatientFrames } from "./create-patient-frames.ts";
import { createRecordFrames, type RecordCreateSource } from "./create-record-frames.ts";
import type { LoadAmount } from "./load-result.ts";

/** Where each request's body comes from. */
export type BodySource =
  /** CreatePatient gRPC frames, each with its own email `benchEmail(prefix, n)`. */
  | { readonly kind: "create-patient"; readonly prefix: string }
  /** CreateConsultation gRPC frames: request `n` books slot `n` of a range with its own request id (never a slot twice). */
  | ({ readonly kind: "book-consultation" } & BookingSource)
  /** CreateRecord frames: request `n` writes a prescription for `parents[n % length]` with request id `n`. */
  | ({ readonly kind: "create-record" } & RecordCreateSource)
  /** Prebuilt bodies (base64), used in turn: for example GetPatient of many different patients. */
  | { readonly kind: "rotate"; readonly bodies: readonly string[] };

/** What bench/run.ts asks of this driver. */
export interface H2LoadOptions {
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  readonly path: string;
  /** Request headers besides the pseudo-headers, e.g. `content-type`. */
  readonly headers: Readonly<Record<string, string>>;
  /** `grpc`: success is HTTP 200 with grpc-status 0; `connect`: HTTP 200. */
  readonly protocol: "grpc" | "connect";
  readonly bodies: BodySource;
  readonly amount: LoadAmount;
  readonly warmupSeconds: number;
  readonly concurrency: number;
}

/** What the driver reports: the measured phase, and every request it sent (warm-up included). */
export interface H2LoadReport {
  readonly measured: Awaited<ReturnType<typeof runClosedLoop>>;
  readonly total: { readonly ok: number; readonly failed: number };
}

/**
 * Child process: the bench's own HTTP/2 load driver, for loads h2load cannot make
 * because its body is fixed: creates that each need a new email, reads spread over
 * many patients. Like h2load: one HTTP/2 session (node:http2), `concurrency`
 * streams in flight, bodies built before the load starts. Reports to bench/run.ts
 * when the measured phase starts and with the result.
 */
async function main(): Promise<void> {
  exitWhenParentStops();
  const options = childOptions<H2LoadOptions>();
  const session = http2.connect(options.origin);
  session.on("error", failChild);
  await new Promise<void>((resolve) => session.once("connect", () => resolve()));
  const body = bodyFactory(options.bodies);
  const headers = { ":method": "POST", ":path": options.path, ...options.headers };
  const grpc = options.protocol === "grpc";
  const issue = (n: number) => {
    // Built before the promise: a body that cannot be made (a slot range run out) throws here and stops the load.
    const payload = body(n);
    return new Promise<boolean>((resolve) => {
      const stream = session.request(headers);
      let status = 0;
      let grpcStatus: unknown;
      stream.on("response", (received) => {
        status = Number(received[":status"]);
        grpcStatus = received["grpc-status"];
      });
      stream.on("trailers", (received) => {
        grpcStatus = received["grpc-status"];
      });
      stream.on("data", () => undefined);
      stream.on("error", () => undefined);
      stream.on("close", () => resolve(status === 200 && (!grpc || grpcStatus === "0") && stream.rstCode === 0));
      stream.end(payload);
    });
  };

  const warmup = await runClosedLoop(options.concurrency, { seconds: options.warmupSeconds }, issue);
  await sendToParent({ type: "measuring" });
  const measured = await runClosedLoop(options.concurrency, options.amount, issue, warmup.nextN);
  const report: H2LoadReport = {
    measured,
    total: { ok: warmup.all.ok + measured.all.ok, failed: warmup.all.failed + measured.all.failed },
  };
  // Stays connected until bench/run.ts says stop (exitWhenParentStops).
  await sendToParent({ type: "result", result: report });
}

function bodyFactory(source: BodySource): (n: number) => Buffer {
  if (source.kind === "create-patient") return createPatientFrames(source.prefix);
  if (source.kind === "book-consultation") return bookConsultationFrames(source);
  if (source.kind === "create-record") return createRecordFrames(source);
  const bodies = source.bodies.map((text) => Buffer.from(text, "base64"));
  if (bodies.length === 0) throw new Error("no bodies to send");
  return (n) => bodies[n % bodies.length] as Buffer;
}

main().catch(failChild);
