import { createHash, randomBytes } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import type pg from "pg";
import { RecordSchema } from "../gen/telemed/patient/v1/record_pb.js";
import { uuidV7 } from "../src/shared/uuid-v7.ts";
import { failChild } from "./child-ipc.ts";
import { benchRequestId } from "./consultation-slots.ts";
import { runPgDriver } from "./pg-driver.ts";
import type { PgChildBasics } from "./pg-targets.ts";
import { benchPrescription } from "./record-fixture.ts";

/** What the records target asks of this driver. */
export interface RecordPgLoadOptions extends PgChildBasics {
  readonly runId: string;
  readonly tag: number;
  /** Patient ids (not names), row `n` for `patientIds[n % length]`. */
  readonly patientIds: readonly string[];
}

/** The columns CreateRecord's INSERT writes (record-repository.ts). */
const columns = [
  "id",
  "patient_id",
  "kind",
  "effective_time",
  "source",
  "author",
  "author_role",
  "content_sealed",
  "data_key_wrapped",
  "data_key_id",
  "create_request_id",
  "create_fingerprint",
  "version",
  "created_at",
  "updated_at",
];

/**
 * Child process: the floor for CreateRecord. Raw `pg` through a pool as large as the
 * service's, `concurrency` INSERTs in flight, each one `medical_records` row of the
 * shape the service stores (same table, constraints and indexes), with ciphertexts of
 * the service's lengths but no encryption: no HTTP, no protobuf, no change feed, no
 * audit, one statement per record.
 */
function recordInserts(options: RecordPgLoadOptions, pool: pg.Pool) {
  if (options.patientIds.length === 0) throw new Error("no patients to insert records for");
  const sql =
    `insert into "medical_records" (${columns.map((name) => `"${name}"`).join(", ")}) ` +
    `values (${columns.map((_, i) => `$${i + 1}`).join(", ")})`;
  // As long as the service's `ef1.<iv>.<ciphertext+tag>` and `ek1.<kek>.<iv>.<wrapped key+tag>`.
  const content = toBinary(RecordSchema, benchPrescription()).length;
  const sealed = `ef1.${randomBytes(12).toString("base64url")}.${randomBytes(content + 16).toString("base64url")}`;
  const wrapped = `ek1.bench.${randomBytes(12).toString("base64url")}.${randomBytes(48).toString("base64url")}`;
  return async (n: number) => {
    const now = new Date();
    const stamp = now.toISOString();
    const requestId = benchRequestId(options.runId, options.tag, n);
    const values = [
      uuidV7(now.getTime()),
      options.patientIds[n % options.patientIds.length],
      "prescription",
      "2026-01-15T09:30:00.000Z",
      "clinician",
      "admins/bench",
      "admin",
      sealed,
      wrapped,
      "bench",
      requestId,
      createHash("sha256").update(requestId).digest("hex"),
      1,
      stamp,
      stamp,
    ];
    const result = await pool.query(sql, values);
    return result.rowCount === 1;
  };
}

runPgDriver(recordInserts).catch(failChild);
