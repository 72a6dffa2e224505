import type pg from "pg";
import { patientColumns } from "../src/patients/patient-entity.ts";
import { uuidV7 } from "../src/shared/uuid-v7.ts";
import { failChild } from "./child-ipc.ts";
import { benchEmail, benchPatientColumns } from "./patient-fixture.ts";
import { runPgDriver } from "./pg-driver.ts";
import type { PgChildBasics } from "./pg-targets.ts";

/** What bench/run.ts asks of this driver. */
export interface PgLoadOptions extends PgChildBasics {
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
function patientQueries(options: PgLoadOptions, pool: pg.Pool) {
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
  return selectId === undefined ? insert : read;
}

runPgDriver(patientQueries).catch(failChild);
