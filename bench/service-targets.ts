import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CreatePatientRequestSchema,
  CreatePatientResponseSchema,
  GetPatientRequestSchema,
  GetPatientResponseSchema,
} from "../gen/telemed/patient/v1/patient_service_pb.js";
import { ensureBenchAdmin } from "./bench-admin.ts";
import { type BenchContext, type BenchTarget, serverSpec, type TargetOutcome } from "./bench-context.ts";
import { countBenchRows, ensureBenchPatients, serviceEnv } from "./bench-patient.ts";
import { grpcFrame } from "./grpc-frame.ts";
import { grpcJsUnaryMany } from "./grpc-js-call.ts";
import { type DriverLoad, measureServerWithDriver } from "./driver-target.ts";
import type { H2loadTarget } from "./h2load.ts";
import { measureServerWithH2load } from "./h2load-target.ts";
import { benchEmail, benchPatient } from "./patient-fixture.ts";
import type { TargetId } from "./settings.ts";
import { bearerHeader, connectJsonHeaders, grpcHeaders, verifyGrpcTarget, verifyJsonTarget } from "./verify-request.ts";

const getPatientPath = "/telemed.patient.v1.PatientService/GetPatient";
const createPatientPath = "/telemed.patient.v1.PatientService/CreatePatient";

const getPatientGrpcBody = (name: string) =>
  grpcFrame(toBinary(GetPatientRequestSchema, create(GetPatientRequestSchema, { name })));
const getPatientJsonBody = (name: string) => Buffer.from(JSON.stringify({ name }));

/**
 * Every service target calls as the run's admin (GetPatient allows the patient and
 * admins; CreatePatient only admins), so each request carries the admin's token.
 */
type Auth = { readonly authorization: string };

/** GetPatient over gRPC of one patient, checked once with the exact bytes and with grpc-js. */
async function verifiedGetPatientGrpc(port: number, name: string, auth: Auth): Promise<H2loadTarget> {
  const target = {
    url: `http://127.0.0.1:${port}${getPatientPath}`,
    body: getPatientGrpcBody(name),
    headers: { ...grpcHeaders, ...auth },
  };
  const answer = fromBinary(GetPatientResponseSchema, await verifyGrpcTarget(target));
  if (answer.patient?.name !== name) throw new Error(`GetPatient over gRPC answered ${answer.patient?.name}`);
  return target;
}

/** GetPatient over Connect JSON of one patient, checked once with the exact bytes. */
async function verifiedGetPatientJson(port: number, name: string, auth: Auth): Promise<H2loadTarget> {
  const target = {
    url: `http://127.0.0.1:${port}${getPatientPath}`,
    body: getPatientJsonBody(name),
    headers: { ...connectJsonHeaders, ...auth },
  };
  const answer = (await verifyJsonTarget(target)) as { patient?: { name?: string } };
  if (answer.patient?.name !== name) throw new Error(`GetPatient over Connect JSON answered ${JSON.stringify(answer)}`);
  return target;
}

/** GetPatient spread over `context.manyPatients` different patients, each checked once before the load. */
function getPatientMany(context: BenchContext, protocol: "grpc" | "connect") {
  return async (port: number): Promise<DriverLoad> => {
    const names = (await ensureBenchPatients(context, port, context.manyPatients)).slice(0, context.manyPatients);
    const auth = bearerHeader(await ensureBenchAdmin(context, port));
    // The exact bytes of the first body (and grpc-js for gRPC); then every patient is read once through grpc-js.
    await (protocol === "grpc" ? verifiedGetPatientGrpc : verifiedGetPatientJson)(port, names[0] as string, auth);
    const answers = await grpcJsUnaryMany(
      `127.0.0.1:${port}`,
      getPatientPath,
      names.map((name) => toBinary(GetPatientRequestSchema, create(GetPatientRequestSchema, { name }))),
      16,
      auth,
    );
    answers.forEach((answer, i) => {
      if (fromBinary(GetPatientResponseSchema, answer).patient?.name !== names[i]) {
        throw new Error(`GetPatient of ${names[i]} answered another patient`);
      }
    });
    const body = protocol === "grpc" ? getPatientGrpcBody : getPatientJsonBody;
    return {
      path: getPatientPath,
      protocol,
      bodies: { kind: "rotate", bodies: names.map((name) => body(name).toString("base64")) },
      headers: auth,
      checks: [
        `verified the first body with its exact bytes, and a read of each of the ${names.length} patients, as the admin`,
      ],
    };
  };
}

/** CreatePatient: a new email per request; afterwards each successful answer must be exactly one stored row. */
function createPatient(context: BenchContext): Promise<TargetOutcome> {
  const prefix = `${context.runId}c`;
  return measureServerWithDriver(
    context,
    serverSpec(context, "create-patient", { script: "service-server.ts", env: serviceEnv(context) }),
    async (port) => {
      const auth = bearerHeader(await ensureBenchAdmin(context, port));
      // One create of its own (another prefix, so the row count below stays exact) with a real client.
      const request = create(CreatePatientRequestSchema, { patient: benchPatient(benchEmail(`${context.runId}v`, 0)) });
      const [answer] = await grpcJsUnaryMany(
        `127.0.0.1:${port}`,
        createPatientPath,
        [toBinary(CreatePatientRequestSchema, request)],
        1,
        auth,
      );
      const name = fromBinary(CreatePatientResponseSchema, answer as Buffer).patient?.name;
      if (!name?.startsWith("patients/")) throw new Error(`CreatePatient answered without a resource name: ${name}`);
      return {
        path: createPatientPath,
        protocol: "grpc",
        bodies: { kind: "create-patient", prefix },
        headers: auth,
        checks: ["verified CreatePatient with a grpc-js call, as the admin"],
      };
    },
    async (report) => {
      const rows = await countBenchRows(context, prefix);
      return { failures: Math.abs(rows - report.total.ok), check: `${rows} rows stored` };
    },
  );
}

function singlePatient(context: BenchContext, id: TargetId, verify: typeof verifiedGetPatientGrpc) {
  return measureServerWithH2load(
    context,
    serverSpec(context, id, { script: "service-server.ts", env: serviceEnv(context) }),
    async (port) => {
      const name = (await ensureBenchPatients(context, port, 1))[0] as string;
      return verify(port, name, bearerHeader(await ensureBenchAdmin(context, port)));
    },
  );
}

/** The service's targets: GetPatient over gRPC and Connect JSON (one patient, and many), CreatePatient over gRPC. */
export const serviceTargets: readonly BenchTarget[] = [
  {
    id: "get-patient-grpc",
    label: "GetPatient, one patient",
    via: "gRPC, h2load",
    run: (context) => singlePatient(context, "get-patient-grpc", verifiedGetPatientGrpc),
  },
  {
    id: "get-patient-json",
    label: "GetPatient, one patient",
    via: "Connect JSON (h2c), h2load",
    run: (context) => singlePatient(context, "get-patient-json", verifiedGetPatientJson),
  },
  {
    id: "get-patient-grpc-many",
    label: "GetPatient, many patients",
    via: "gRPC, bench driver",
    run: (context) =>
      measureServerWithDriver(
        context,
        serverSpec(context, "get-patient-grpc-many", { script: "service-server.ts", env: serviceEnv(context) }),
        getPatientMany(context, "grpc"),
      ),
  },
  {
    id: "get-patient-json-many",
    label: "GetPatient, many patients",
    via: "Connect JSON (h2c), bench driver",
    run: (context) =>
      measureServerWithDriver(
        context,
        serverSpec(context, "get-patient-json-many", { script: "service-server.ts", env: serviceEnv(context) }),
        getPatientMany(context, "connect"),
      ),
  },
  {
    id: "create-patient",
    label: "CreatePatient",
    via: "gRPC, bench driver",
    run: createPatient,
  },
];
