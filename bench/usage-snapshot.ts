import type { BenchDatabase } from "./bench-database.ts";
import { processCpuSeconds } from "./process-cpu.ts";

/** Counters read at one moment: CPU of the process under test and of the bench database's backends, and transactions. */
export interface UsageSnapshot {
  readonly processCpu: number | undefined;
  /** CPU seconds so far of each PostgreSQL backend connected to the bench database, by pid. */
  readonly backendCpu: ReadonlyMap<number, number>;
  readonly transactions: number | undefined;
}

/** Resources one successful call cost, on average over a window. */
export interface UsagePerCall {
  readonly cpuUsPerCall: number | undefined;
  /**
   * CPU of the PostgreSQL backends serving the bench database (not PostgreSQL's
   * background writers, which other databases on the shared server use too).
   */
  readonly pgCpuUsPerCall: number | undefined;
  /**
   * Transactions (each statement outside a transaction is one) the bench database
   * committed or rolled back per call, from pg_stat_database. PostgreSQL publishes
   * these counters about once a second, so over a 10 s window this is good to ~10%:
   * enough to tell one statement per call from a batch serving many calls.
   */
  readonly dbStatementsPerCall: number | undefined;
}

/** Reads the counters now (one short query, whose own connection is left out). */
export async function usageSnapshot(database: BenchDatabase, pid: number | undefined): Promise<UsageSnapshot> {
  const result = await database
    .query<{ n: string; pids: number[] }>(
      "select (select xact_commit + xact_rollback from pg_stat_database where datname = current_database()) as n, " +
        "array(select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()) as pids",
    )
    .catch(() => undefined);
  const row = result?.rows[0];
  const backendCpu = new Map<number, number>();
  for (const backend of row?.pids ?? []) {
    const seconds = processCpuSeconds(backend);
    if (seconds !== undefined) backendCpu.set(backend, seconds);
  }
  return {
    processCpu: processCpuSeconds(pid),
    backendCpu,
    transactions: row?.n === undefined || row.n === null ? undefined : Number(row.n),
  };
}

/** Usage per call between two snapshots. A backend that appeared in between counts from zero. */
export function usagePerCall(before: UsageSnapshot, after: UsageSnapshot, calls: number): UsagePerCall {
  if (calls === 0) return { cpuUsPerCall: undefined, pgCpuUsPerCall: undefined, dbStatementsPerCall: undefined };
  let backendSeconds = 0;
  for (const [backend, seconds] of after.backendCpu) backendSeconds += seconds - (before.backendCpu.get(backend) ?? 0);
  return {
    cpuUsPerCall:
      before.processCpu === undefined || after.processCpu === undefined
        ? undefined
        : ((after.processCpu - before.processCpu) * 1e6) / calls,
    pgCpuUsPerCall: after.backendCpu.size === 0 ? undefined : (backendSeconds * 1e6) / calls,
    // Without backends (an echo server), the database's counters say nothing about the target.
    dbStatementsPerCall:
      before.transactions === undefined || after.transactions === undefined || after.backendCpu.size === 0
        ? undefined
        : // The first reading is itself one transaction.
          Math.max(0, after.transactions - before.transactions - 1) / calls,
  };
}
