import type { BenchContext, BenchTarget, TargetOutcome } from "./bench-context.ts";
import { countBenchRows } from "./bench-patient.ts";
import type { LoadResult } from "./load-result.ts";
import type { PgInsertLoadOptions } from "./pg-insert-load.ts";
import { startChild } from "./pinned-child.ts";

/**
 * The raw INSERT floor: the pg driver runs on the server core (it stands where the
 * service stands; there is no HTTP client to put on the load core), PostgreSQL
 * wherever the kernel puts it. Every successful insert must be a row afterwards.
 */
async function pgInsert(context: BenchContext): Promise<TargetOutcome> {
  const prefix = `${context.runId}r`;
  const options: PgInsertLoadOptions = {
    databaseUrl: context.database.url,
    amount: context.settings.amount,
    warmupSeconds: context.settings.warmupSeconds,
    concurrency: context.settings.streams,
    poolMax: context.poolMax,
    prefix,
  };
  const driver = startChild(context.pinning, {
    script: "pg-insert-load.ts",
    core: context.pinning.serverCore,
    options,
  });
  try {
    const report = (await driver.next("result", 600_000)).result as {
      measured: LoadResult;
      total: { ok: number; failed: number };
    };
    const rows = await countBenchRows(context, prefix);
    return {
      load: report.measured,
      failures: report.total.failed + Math.abs(rows - report.total.ok),
      checks: [`driver: ${report.total.ok} ok, ${report.total.failed} failed (warm-up included); ${rows} rows stored`],
    };
  } finally {
    await driver.stop();
  }
}

/** A raw `pg` INSERT of the CreatePatient row, pool sized like the service's. */
export const pgInsertTarget: BenchTarget = {
  id: "pg-insert",
  label: "raw pg INSERT (same row)",
  via: "pg.Pool of DB_POOL_MAX, bench driver",
  run: pgInsert,
};
