import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GetPatientRequestSchema, GetPatientResponseSchema } from "../gen/telemed/patient/v1/patient_service_pb.js";
import { type BenchContext, type BenchTarget, serverSpec, type TargetOutcome } from "./bench-context.ts";
import { countBenchRows, ensureBenchPatient, serviceEnv } from "./bench-patient.ts";
import type { CreatePatientLoadOptions, CreatePatientLoadReport } from "./create-patient-load.ts";
import { grpcFrame } from "./grpc-frame.ts";
import type { H2loadTarget } from "./h2load.ts";
import { measureServerWithH2load } from "./h2load-target.ts";
import { childStats, startChild } from "./pinned-child.ts";
import { connectJsonHeaders, grpcHeaders, verifyGrpcTarget, verifyJsonTarget } from "./verify-request.ts";

const getPatientPath = "/telemed.patient.v1.PatientService/GetPatient";

function getPatientGrpc(context: BenchContext) {
  return async (port: number): Promise<H2loadTarget> => {
    const name = await ensureBenchPatient(context, port);
    const body = grpcFrame(toBinary(GetPatientRequestSchema, create(GetPatientRequestSchema, { name })));
    const target = { url: `http://127.0.0.1:${port}${getPatientPath}`, body, headers: grpcHeaders };
    const answer = fromBinary(GetPatientResponseSchema, await verifyGrpcTarget(target));
    if (answer.patient?.name !== name) throw new Error(`GetPatient over gRPC answered ${answer.patient?.name}`);
    return target;
  };
}

function getPatientJson(context: BenchContext) {
  return async (port: number): Promise<H2loadTarget> => {
    const name = await ensureBenchPatient(context, port);
    const target = {
      url: `http://127.0.0.1:${port}${getPatientPath}`,
      body: Buffer.from(JSON.stringify({ name })),
      headers: connectJsonHeaders,
    };
    const answer = (await verifyJsonTarget(target)) as { patient?: { name?: string } };
    if (answer.patient?.name !== name)
      throw new Error(`GetPatient over Connect JSON answered ${JSON.stringify(answer)}`);
    return target;
  };
}

/**
 * CreatePatient under the bench's own driver (one HTTP/2 session, `streams`
 * concurrent streams, a new email per request), in its own process on the load
 * core. Afterwards the rows the run stored are counted: each successful answer must
 * have stored exactly one row, and the service must have counted no failed call.
 */
async function createPatient(context: BenchContext): Promise<TargetOutcome> {
  const { settings, pinning } = context;
  const server = startChild(
    pinning,
    serverSpec(context, "create-patient", { script: "service-server.ts", env: serviceEnv(context) }),
  );
  try {
    const { port } = await server.next("ready");
    await ensureBenchPatient(context, port);
    const prefix = `${context.runId}c`;
    const before = await childStats(server);
    const options: CreatePatientLoadOptions = {
      origin: `http://127.0.0.1:${port}`,
      amount: settings.amount,
      warmupSeconds: settings.warmupSeconds,
      concurrency: settings.streams,
      prefix,
    };
    const driver = startChild(pinning, { script: "create-patient-load.ts", core: pinning.loadCore, options });
    const report = (await driver.next("result", 600_000)).result as CreatePatientLoadReport;
    await driver.stop();
    const after = await childStats(server);
    const rows = await countBenchRows(context, prefix);
    const ok = after.ok - before.ok;
    const failedOnServer = after.failed - before.failed;
    return {
      load: report.measured,
      failures:
        report.total.failed + failedOnServer + Math.abs(rows - report.total.ok) + Math.max(0, report.total.ok - ok),
      checks: [
        "verified one CreatePatient with a grpc-js call",
        `driver: ${report.total.ok} ok, ${report.total.failed} failed (warm-up included); server counted ${ok} ok, ${failedOnServer} failed; ${rows} rows stored`,
      ],
    };
  } finally {
    await server.stop();
  }
}

/** The service's targets: GetPatient over gRPC and Connect JSON, CreatePatient over gRPC. */
export const serviceTargets: readonly BenchTarget[] = [
  {
    id: "get-patient-grpc",
    label: "GetPatient (service)",
    via: "gRPC, h2load",
    run: (context) =>
      measureServerWithH2load(
        context,
        serverSpec(context, "get-patient-grpc", { script: "service-server.ts", env: serviceEnv(context) }),
        getPatientGrpc(context),
      ),
  },
  {
    id: "get-patient-json",
    label: "GetPatient (service)",
    via: "Connect JSON (h2c), h2load",
    run: (context) =>
      measureServerWithH2load(
        context,
        serverSpec(context, "get-patient-json", { script: "service-server.ts", env: serviceEnv(context) }),
        getPatientJson(context),
      ),
  },
  {
    id: "create-patient",
    label: "CreatePatient (service)",
    via: "gRPC, bench driver (node:http2)",
    run: createPatient,
  },
];
