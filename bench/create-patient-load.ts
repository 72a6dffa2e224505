import * as http2 from "node:http2";
import { childOptions, failChild, sendToParent } from "./child-ipc.ts";
import { runClosedLoop } from "./closed-loop.ts";
import { createPatientFrames } from "./create-patient-frames.ts";
import type { LoadAmount } from "./load-result.ts";

/** What bench/run.ts asks of this driver. */
export interface CreatePatientLoadOptions {
  /** `http://127.0.0.1:PORT` of the service. */
  readonly origin: string;
  readonly amount: LoadAmount;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  /** Email prefix of this run; emails are `benchEmail(prefix, n)`. */
  readonly prefix: string;
}

/** What the driver reports: the measured phase, and every request it sent (warm-up included). */
export interface CreatePatientLoadReport {
  readonly measured: Awaited<ReturnType<typeof runClosedLoop>>;
  readonly total: { readonly ok: number; readonly failed: number };
}

const path = "/telemed.patient.v1.PatientService/CreatePatient";

/**
 * Child process: the CreatePatient load driver (h2load can only send one fixed
 * body, and every create needs its own email). Like h2load: one HTTP/2 session over
 * node:http2, `concurrency` streams in flight, prebuilt gRPC frames where only the
 * email digits differ. A request succeeds on HTTP 200 with grpc-status 0.
 */
async function main(): Promise<void> {
  const options = childOptions<CreatePatientLoadOptions>();
  const session = http2.connect(options.origin);
  session.on("error", failChild);
  await new Promise<void>((resolve) => session.once("connect", () => resolve()));
  const frames = createPatientFrames(options.prefix);
  const headers = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" };
  const issue = (n: number) =>
    new Promise<boolean>((resolve) => {
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
      stream.on("close", () => resolve(status === 200 && grpcStatus === "0" && stream.rstCode === 0));
      stream.end(frames(n));
    });

  const warmup = await runClosedLoop(options.concurrency, { seconds: options.warmupSeconds }, issue);
  const measured = await runClosedLoop(options.concurrency, options.amount, issue, warmup.nextN);
  session.close();
  const report: CreatePatientLoadReport = {
    measured,
    total: { ok: warmup.all.ok + measured.all.ok, failed: warmup.all.failed + measured.all.failed },
  };
  sendToParent({ type: "result", result: report });
}

main().then(() => process.exit(0), failChild);
