import { uuidV7 } from "../src/shared/uuid-v7.ts";
import type { BenchContext, BenchTarget, TargetOutcome } from "./bench-context.ts";
import { countBenchRows, ensureMigrated } from "./bench-patient.ts";
import type { LoadAmount, LoadResult } from "./load-result.ts";
import { benchEmail, benchPatientColumns } from "./patient-fixture.ts";
import type { PgLoadOptions } from "./pg-load.ts";
import { startChild } from "./pinned-child.ts";
import { usagePerCall, usageSnapshot } from "./usage-snapshot.ts";

/** What every raw `pg` driver child gets from `runPgChild`, besides its own options. */
export interface PgChildBasics {
  readonly databaseUrl: string;
  readonly amount: LoadAmount;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  /** Connections in the pool: the service's DB_POOL_MAX. */
  readonly poolMax: number;
}

export type PgReport = { measured: LoadResult; total: { ok: number; failed: number } };

/** The patient INSERT or SELECT floor (pg-load.ts). */
function runPgLoad(context: BenchContext, extra: Partial<PgLoadOptions> & { prefix: string }): Promise<PgReport> {
  return runPgChild(context, "pg-load.ts", extra);
}

/**
 * Runs a raw `pg` driver child (`script`, given the run's amount, warm-up, streams and
 * pool size besides `extra`) and its CPU and the database's per call. On the server
 * core: it stands where the service stands (there is no HTTP client to put on the load
 * core); PostgreSQL runs wherever the kernel puts it, as it does for the service's targets.
 */
export async function runPgChild(context: BenchContext, script: string, extra: object): Promise<PgReport> {
  const options: PgChildBasics = {
    databaseUrl: context.database.url,
    amount: context.settings.amount,
    warmupSeconds: context.settings.warmupSeconds,
    concurrency: context.settings.streams,
    poolMax: context.poolMax,
  };
  const driver = startChild(context.pinning, {
    script,
    core: context.pinning.serverCore,
    options: { ...options, ...extra },
  });
  try {
    await driver.next("measuring", 120_000);
    const before = await usageSnapshot(context.database, driver.process.pid);
    const report = (await driver.next("result", 600_000)).result as PgReport;
    const after = await usageSnapshot(context.database, driver.process.pid);
    return { ...report, measured: { ...report.measured, ...usagePerCall(before, after, report.measured.succeeded) } };
  } finally {
    await driver.stop();
  }
}

/** Every successful insert must be a row afterwards. */
async function pgInsert(context: BenchContext): Promise<TargetOutcome> {
  await ensureMigrated(context);
  const prefix = `${context.runId}r`;
  const report = await runPgLoad(context, { prefix });
  const rows = await countBenchRows(context, prefix);
  return {
    load: report.measured,
    failures: report.total.failed + Math.abs(rows - report.total.ok),
    checks: [`driver: ${report.total.ok} ok, ${report.total.failed} failed (warm-up included); ${rows} rows stored`],
  };
}

/** Reads the profile GetPatient reads (or, run alone, one it inserts); every read must find it. */
async function pgSelect(context: BenchContext): Promise<TargetOutcome> {
  let id = context.patientNames[0]?.slice("patients/".length);
  if (id === undefined) {
    await ensureMigrated(context);
    id = uuidV7();
    const now = new Date().toISOString();
    const columns = {
      ...benchPatientColumns(benchEmail(`${context.runId}s`, 0)),
      id,
      created_at: now,
      updated_at: now,
    };
    const names = Object.keys(columns);
    await context.database.query(
      `insert into "patients" (${names.map((name) => `"${name}"`).join(", ")}) values (${names.map((_, i) => `$${i + 1}`).join(", ")})`,
      Object.values(columns),
    );
  }
  const report = await runPgLoad(context, { prefix: `${context.runId}s`, selectId: id });
  return {
    load: report.measured,
    failures: report.total.failed,
    checks: [`driver: ${report.total.ok} reads found the row, ${report.total.failed} failed (warm-up included)`],
  };
}

/** Raw `pg` references: GetPatient's SELECT (for reference) and CreatePatient's INSERT (the goal's floor). */
export const pgTargets: readonly BenchTarget[] = [
  {
    id: "pg-select",
    label: "raw pg SELECT (GetPatient's query)",
    via: "pg.Pool of DB_POOL_MAX, bench driver",
    run: pgSelect,
  },
  { id: "pg-insert", label: "raw pg INSERT (same row)", via: "pg.Pool of DB_POOL_MAX, bench driver", run: pgInsert },
];
