import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CreatePatientRequestSchema,
  CreatePatientResponseSchema,
} from "../gen/telemed/patient/v1/patient_service_pb.js";
import { ensureBenchAdmin } from "./bench-admin.ts";
import type { BenchContext } from "./bench-context.ts";
import { grpcJsUnaryMany } from "./grpc-js-call.ts";
import { startChild } from "./pinned-child.ts";
import { benchEmail, benchFamilyName, benchPatient } from "./patient-fixture.ts";
import { bearerHeader } from "./verify-request.ts";

/**
 * The profiles GetPatient reads: created through the service itself with a real
 * grpc-js client, as the run's admin (CreatePatient is for admins; this also checks
 * that it works before any load), and remembered in the context for the later
 * targets. The first one is "the patient" of the single-patient targets. Returns at
 * least `count` resource names.
 */
export async function ensureBenchPatients(context: BenchContext, port: number, count = 1): Promise<string[]> {
  const auth = bearerHeader(await ensureBenchAdmin(context, port));
  const have = context.patientNames.length;
  if (have >= count) return context.patientNames;
  const requests = Array.from({ length: count - have }, (_, i) =>
    toBinary(
      CreatePatientRequestSchema,
      create(CreatePatientRequestSchema, { patient: benchPatient(benchEmail(`${context.runId}g`, have + i)) }),
    ),
  );
  const answers = await grpcJsUnaryMany(
    `127.0.0.1:${port}`,
    "/telemed.patient.v1.PatientService/CreatePatient",
    requests,
    16,
    auth,
  );
  for (const answer of answers) {
    const name = fromBinary(CreatePatientResponseSchema, answer).patient?.name;
    if (!name?.startsWith("patients/")) throw new Error(`CreatePatient answered without a resource name: ${name}`);
    context.patientNames.push(name);
  }
  return context.patientNames;
}

/**
 * Environment of the service child: the bench database, a free port, the shared pool
 * size, and the run's DATA_DIR (its keys sign and verify the admin's token in every
 * child), with access tokens that outlast the run.
 */
export function serviceEnv(context: BenchContext): Record<string, string> {
  return {
    DATABASE_URL: context.database.url,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "error",
    DB_POOL_MAX: String(context.poolMax),
    DATA_DIR: context.dataDir,
    ACCESS_TOKEN_TTL_SECONDS: "3600",
  };
}

/** Rows in `patients` of this bench prefix (by the family name that carries it: the email is sealed). */
export async function countBenchRows(context: BenchContext, prefix: string): Promise<number> {
  const result = await context.database.query<{ n: number }>(
    `select count(*)::int as n from "patients" where "family_name" = $1`,
    [benchFamilyName(benchEmail(prefix, 0))],
  );
  return result.rows[0]?.n ?? 0;
}

/**
 * Makes sure the bench database has the service's schema. The service migrates at
 * start-up, so when no service target has run yet (BENCH_ONLY=pg-insert), it is
 * started once and stopped again.
 */
export async function ensureMigrated(context: BenchContext): Promise<void> {
  const found = await context.database.query<{ table: string | null }>(
    `select to_regclass('patients')::text as "table"`,
  );
  if (found.rows[0]?.table) return;
  const service = startChild(context.pinning, {
    script: "service-server.ts",
    core: context.pinning.serverCore,
    env: serviceEnv(context),
  });
  try {
    await service.next("ready");
  } finally {
    await service.stop();
  }
}
