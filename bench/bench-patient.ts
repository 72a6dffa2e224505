import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CreatePatientRequestSchema,
  CreatePatientResponseSchema,
} from "../gen/telemed/patient/v1/patient_service_pb.js";
import type { BenchContext } from "./bench-context.ts";
import { grpcJsUnary } from "./grpc-js-call.ts";
import { benchEmail, benchPatient } from "./patient-fixture.ts";

/**
 * The profile GetPatient reads: created once per run through the service itself
 * with a real grpc-js client (which also checks that CreatePatient works before
 * any load), and remembered in the context for the later targets.
 */
export async function ensureBenchPatient(context: BenchContext, port: number): Promise<string> {
  if (context.patientName !== undefined) return context.patientName;
  const request = create(CreatePatientRequestSchema, { patient: benchPatient(benchEmail(`${context.runId}g`, 0)) });
  const answer = fromBinary(
    CreatePatientResponseSchema,
    await grpcJsUnary(
      `127.0.0.1:${port}`,
      "/telemed.patient.v1.PatientService/CreatePatient",
      toBinary(CreatePatientRequestSchema, request),
    ),
  );
  const name = answer.patient?.name;
  if (!name?.startsWith("patients/")) throw new Error(`CreatePatient answered without a resource name: ${name}`);
  context.patientName = name;
  return name;
}

/** Environment of the service child: the bench database, a free port, the shared pool size. */
export function serviceEnv(context: BenchContext): Record<string, string> {
  return {
    DATABASE_URL: context.database.url,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    DB_POOL_MAX: String(context.poolMax),
  };
}

/** Rows in `patients` whose email has this bench prefix. */
export async function countBenchRows(context: BenchContext, prefix: string): Promise<number> {
  const result = await context.database.query<{ n: number }>(
    `select count(*)::int as n from "patients" where "email" like $1`,
    [`bench.${prefix}.%`],
  );
  return result.rows[0]?.n ?? 0;
}
