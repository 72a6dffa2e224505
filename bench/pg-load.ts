import pg from "pg";
import { uuidV7 } from "../src/shared/uuid-v7.ts";
import { childOptions, exitWhenParentStops, failChild, sendToParent } from "./child-ipc.ts";
import { runClosedLoop } from "./closed-loop.ts";
import type { LoadAmount } from "./load-result.ts";
import { benchEmail, benchPatientColumns } from "./patient-fixture.ts";
import { patientColumns } from "../src/patients/patient-entity.ts";

/** What bench/run.ts asks of this driver. */
export interface PgLoadOptions {
  readonly databaseUrl: string;
  readonly amount: LoadAmount;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  /** Connections in the pool: the service's DB_POOL_MAX. */
  readonly poolMax: number;
  readonly prefix: string;
  /** `select`: read this patient id by GetPatient's query instead of inserting (a reference for GetPatient). */
  readonly selectId?: string;
}

/**
 * Child process: raw `pg` load through a pool as large as the service's, with
 * `concurrency` queries in flight; no HTTP, no protobuf, no ORM. By default the
 * floor for CreatePatient: the same row (same columns and values, a UUIDv7 id made
 * in code, as the service does) INSERTed into the same `patients` table. With
 * `selectId`, GetPatient's SELECT of one row, the floor for GetPatient.
 */
async function main(): Promise<void> {
  exitWhenParentStops();
  const options = childOptions<PgLoadOptions>();
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolMax });
  const names = [...Object.keys(benchPatientColumns("")), "id", "created_at", "updated_at"];
  const sql =
    `insert into "patients" (${names.map((name) => `"${name}"`).join(", ")}) ` +
    `values (${names.map((_, i) => `$${i + 1}`).join(", ")})`;
  const select = `select ${patientColumns} from "patients" where "id" = $1 and "deleted_at" is null`;
  const selectId = options.selectId;
  const read = async () => (await pool.query(select, [selectId])).rowCount === 1;
  const insert = async (n: number) => {
    const now = new Date();
    const stamp = now.toISOString();
    const values = [
      ...Object.values(benchPatientColumns(benchEmail(options.prefix, n))),
      uuidV7(now.getTime()),
      stamp,
      stamp,
    ];
    const result = await pool.query(sql, values);
    return result.rowCount === 1;
  };
  const issue = selectId === undefined ? insert : read;
  const warmup = await runClosedLoop(options.concurrency, { seconds: options.warmupSeconds }, issue);
  await sendToParent({ type: "measuring" });
  const measured = await runClosedLoop(options.concurrency, options.amount, issue, warmup.nextN);
  // The pool stays open until bench/run.ts says stop, so its readings after the run still see every backend.
  await sendToParent({
    type: "result",
    result: {
      measured,
      total: { ok: warmup.all.ok + measured.all.ok, failed: warmup.all.failed + measured.all.failed },
    },
  });
}

main().catch(failChild);
