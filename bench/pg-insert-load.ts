import pg from "pg";
import { uuidV7 } from "../src/shared/uuid-v7.ts";
import { childOptions, failChild, sendToParent } from "./child-ipc.ts";
import { runClosedLoop } from "./closed-loop.ts";
import type { LoadAmount } from "./load-result.ts";
import { benchEmail, benchPatientColumns } from "./patient-fixture.ts";

/** What bench/run.ts asks of this driver. */
export interface PgInsertLoadOptions {
  readonly databaseUrl: string;
  readonly amount: LoadAmount;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  /** Connections in the pool: the service's DB_POOL_MAX. */
  readonly poolMax: number;
  readonly prefix: string;
}

/**
 * Child process: the floor for CreatePatient. The same row (same columns and
 * values, a UUIDv7 id made in code, as the service does) INSERTed into the same
 * `patients` table through a raw `pg` pool as large as the service's, with
 * `concurrency` inserts in flight. No HTTP, no protobuf, no ORM.
 */
async function main(): Promise<void> {
  const options = childOptions<PgInsertLoadOptions>();
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolMax });
  const names = [...Object.keys(benchPatientColumns("")), "id", "created_at", "updated_at"];
  const sql =
    `insert into "patients" (${names.map((name) => `"${name}"`).join(", ")}) ` +
    `values (${names.map((_, i) => `$${i + 1}`).join(", ")})`;
  const issue = async (n: number) => {
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
  const warmup = await runClosedLoop(options.concurrency, { seconds: options.warmupSeconds }, issue);
  const measured = await runClosedLoop(options.concurrency, options.amount, issue, warmup.nextN);
  await pool.end();
  sendToParent({
    type: "result",
    result: {
      measured,
      total: { ok: warmup.all.ok + measured.all.ok, failed: warmup.all.failed + measured.all.failed },
    },
  });
}

main().then(() => process.exit(0), failChild);
