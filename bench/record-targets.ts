import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CreateRecordRequestSchema,
  CreateRecordResponseSchema,
  GetRecordRequestSchema,
  GetRecordResponseSchema,
  ListRecordsRequestSchema,
  ListRecordsResponseSchema,
} from "../gen/telemed/patient/v1/record_service_pb.js";
import { ensureBenchAdmin } from "./bench-admin.ts";
import { type BenchContext, type BenchTarget, serverSpec, type TargetOutcome } from "./bench-context.ts";
import { ensureBenchPatients, ensureMigrated, serviceEnv } from "./bench-patient.ts";
import { pgPatientIds } from "./consultation-targets.ts";
import { createRecordRequest, type RecordCreateSource } from "./create-record-frames.ts";
import { measureServerWithDriver } from "./driver-target.ts";
import { grpcFrame } from "./grpc-frame.ts";
import { grpcJsUnaryMany } from "./grpc-js-call.ts";
import type { H2loadTarget } from "./h2load.ts";
import { measureServerWithH2load } from "./h2load-target.ts";
import { runPgChild } from "./pg-targets.ts";
import type { RecordPgLoadOptions } from "./record-pg-load.ts";
import type { TargetId } from "./settings.ts";
import { bearerHeader, grpcHeaders, verifyGrpcTarget } from "./verify-request.ts";

const service = "/telemed.patient.v1.RecordService";

/** Records of the read targets' patient: one page of the history. */
const historyPage = 10;

/** Request-id groups, one per use, so ids never repeat within a run. */
const tags = { seed: 0x11, create: 0x12, pg: 0x13 } as const;

/** Patients the CreateRecord load spreads over (each a timeline of its own). */
const writePatients = 16;

type Auth = { readonly authorization: string };

/**
 * The read targets' records: `historyPage` prescriptions of the first bench patient,
 * created through CreateRecord as the admin (each sealed under its own data key).
 * Returns the patient and the records' names, newest first as the history lists them.
 */
async function seedHistory(context: BenchContext, port: number, auth: Auth) {
  const parent = (await ensureBenchPatients(context, port, 1))[0] as string;
  const source: RecordCreateSource = { runId: context.runId, tag: tags.seed, parents: [parent] };
  const answers = await grpcJsUnaryMany(
    `127.0.0.1:${port}`,
    `${service}/CreateRecord`,
    Array.from({ length: historyPage }, (_, n) => toBinary(CreateRecordRequestSchema, createRecordRequest(source, n))),
    1,
    auth,
  );
  const names = answers.map((answer) => fromBinary(CreateRecordResponseSchema, answer).record?.name ?? "");
  if (names.some((name) => !name.startsWith(`${parent}/records/`))) throw new Error("CreateRecord answered no record");
  return { parent, names };
}

/** GetRecord of one encrypted record over gRPC, checked once with the exact bytes and with grpc-js. */
async function getRecordTarget(context: BenchContext, port: number): Promise<H2loadTarget> {
  const auth = bearerHeader(await ensureBenchAdmin(context, port));
  const { names } = await seedHistory(context, port, auth);
  const name = names[0] as string;
  const target = {
    url: `http://127.0.0.1:${port}${service}/GetRecord`,
    body: grpcFrame(toBinary(GetRecordRequestSchema, create(GetRecordRequestSchema, { name }))),
    headers: { ...grpcHeaders, ...auth },
  };
  const record = fromBinary(GetRecordResponseSchema, await verifyGrpcTarget(target)).record;
  if (record?.name !== name || record.details.case !== "prescription")
    throw new Error("GetRecord answered another record");
  return target;
}

/** ListRecords, one page of `historyPage` encrypted records, checked once to list exactly the seeded ones. */
async function listRecordsTarget(context: BenchContext, port: number): Promise<H2loadTarget> {
  const auth = bearerHeader(await ensureBenchAdmin(context, port));
  const { parent, names } = await seedHistory(context, port, auth);
  const request = create(ListRecordsRequestSchema, { parent, pageSize: historyPage });
  const target = {
    url: `http://127.0.0.1:${port}${service}/ListRecords`,
    body: grpcFrame(toBinary(ListRecordsRequestSchema, request)),
    headers: { ...grpcHeaders, ...auth },
  };
  const page = fromBinary(ListRecordsResponseSchema, await verifyGrpcTarget(target));
  const listed = new Set(page.records.map((record) => record.name));
  if (page.records.length !== historyPage || names.some((name) => !listed.has(name))) {
    throw new Error(`ListRecords listed ${page.records.length} records, not the ${historyPage} seeded`);
  }
  return target;
}

function readTarget(context: BenchContext, id: TargetId, prepare: typeof getRecordTarget) {
  return measureServerWithH2load(
    context,
    serverSpec(context, id, { script: "service-server.ts", env: serviceEnv(context) }),
    (port) => prepare(context, port),
  );
}

/** Records whose request id has this run's tag: what a load stored. */
async function countRecords(context: BenchContext, tag: number): Promise<number> {
  const prefix = `${context.runId}-${tag.toString(16).padStart(4, "0")}-`;
  const result = await context.database.query<{ n: number }>(
    `select count(*)::int as n from "medical_records" where "create_request_id"::text like $1`,
    [`${prefix}%`],
  );
  return result.rows[0]?.n ?? 0;
}

/** CreateRecord over gRPC, a new request id each, as the admin; every success must be one stored row. */
function createRecord(context: BenchContext): Promise<TargetOutcome> {
  return measureServerWithDriver(
    context,
    serverSpec(context, "create-record", { script: "service-server.ts", env: serviceEnv(context) }),
    async (port) => {
      const auth = bearerHeader(await ensureBenchAdmin(context, port));
      const parents = (await ensureBenchPatients(context, port, writePatients)).slice(0, writePatients);
      return {
        path: `${service}/CreateRecord`,
        protocol: "grpc",
        bodies: { kind: "create-record", runId: context.runId, tag: tags.create, parents },
        headers: auth,
        checks: [`CreateRecord of a prescription for ${parents.length} patients, each request its own request id`],
      };
    },
    async (report) => {
      const rows = await countRecords(context, tags.create);
      return { failures: Math.abs(rows - report.total.ok), check: `${rows} records stored` };
    },
  );
}

/** The floor: a raw `pg` INSERT of a record row (ciphertexts of the same length, unencrypted). */
async function pgInsertRecord(context: BenchContext): Promise<TargetOutcome> {
  await ensureMigrated(context);
  const options: Omit<RecordPgLoadOptions, "databaseUrl" | "amount" | "warmupSeconds" | "concurrency" | "poolMax"> = {
    runId: context.runId,
    tag: tags.pg,
    // Patients of its own (an email prefix of its own) when no service target made them first.
    patientIds: await pgPatientIds(context, writePatients, "w"),
  };
  const report = await runPgChild(context, "record-pg-load.ts", options);
  const rows = await countRecords(context, tags.pg);
  return {
    load: report.measured,
    failures: report.total.failed + Math.abs(rows - report.total.ok),
    checks: [`driver: ${report.total.ok} ok, ${report.total.failed} failed (warm-up included); ${rows} rows stored`],
  };
}

/** Issue 6's cost of encryption: reads and writes of encrypted records, and the write's raw INSERT floor. */
export const recordTargets: readonly BenchTarget[] = [
  {
    id: "get-record-grpc",
    label: "GetRecord, one encrypted record",
    via: "gRPC, h2load",
    run: (context) => readTarget(context, "get-record-grpc", getRecordTarget),
  },
  {
    id: "list-records-grpc",
    label: `ListRecords, a history page of ${historyPage} encrypted records`,
    via: "gRPC, h2load",
    run: (context) => readTarget(context, "list-records-grpc", listRecordsTarget),
  },
  { id: "create-record", label: "CreateRecord (a prescription)", via: "gRPC, bench driver", run: createRecord },
  {
    id: "pg-insert-record",
    label: "raw pg INSERT (a record's row)",
    via: "pg.Pool of DB_POOL_MAX, bench driver",
    run: pgInsertRecord,
  },
];
