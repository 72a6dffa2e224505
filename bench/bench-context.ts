import type { BenchDatabase } from "./bench-database.ts";
import type { CpuPinning } from "./cpu-pinning.ts";
import type { LoadResult } from "./load-result.ts";
import type { ChildSpec } from "./pinned-child.ts";
import type { BenchSettings, TargetId } from "./settings.ts";

/** What every target gets from bench/run.ts. */
export interface BenchContext {
  readonly settings: BenchSettings;
  readonly pinning: CpuPinning;
  readonly database: BenchDatabase;
  /** The service's DB_POOL_MAX, given to the service and to the raw `pg` pool alike. */
  readonly poolMax: number;
  /** Random per run: email prefixes start with it. */
  readonly runId: string;
  /** Where --cpu-prof writes, when profiling. */
  readonly profileDir: string;
  /** `patients/{id}` of the profiles GetPatient reads, once a target has created them; the first is "the patient". */
  readonly patientNames: string[];
  /** How many patients the many-patient GetPatient targets spread their reads over. */
  readonly manyPatients: number;
  /**
   * DATA_DIR of every service child, made once per run: the token signing key the
   * first child generates there verifies the admin's token in all the others.
   */
  readonly dataDir: string;
  /** The admin's access token (bench-admin.ts), once the first service target asked for it. */
  adminToken?: Promise<string>;
}

/** One measured target. */
export interface BenchTarget {
  readonly id: TargetId;
  /** What is measured, for the table. */
  readonly label: string;
  /** Protocol and load generator, for the table. */
  readonly via: string;
  run(context: BenchContext): Promise<TargetOutcome>;
}

/** A target's measured run, with what was checked. */
export interface TargetOutcome {
  readonly load: LoadResult;
  /** Every failed request seen anywhere (load generator, server counters, row counts); 0 for a valid result. */
  readonly failures: number;
  /** What was verified, one line each, for the report. */
  readonly checks: readonly string[];
  /** CPU (cores, median over the run) that other work on the machine used meanwhile; set by bench/run.ts. */
  readonly otherLoadCores?: number | undefined;
}

/** The child spec of a server under test: pinned to the server core, with BENCH_SERVER_NODE_ARGS, profiled when asked. */
export function serverSpec(context: BenchContext, id: TargetId, spec: Omit<ChildSpec, "core">): ChildSpec {
  const profiled = context.settings.profile.includes(id);
  return {
    ...spec,
    core: context.pinning.serverCore,
    nodeArgs: [
      ...context.settings.serverNodeArgs,
      ...(profiled ? ["--cpu-prof", `--cpu-prof-dir=${context.profileDir}`, `--cpu-prof-name=${id}.cpuprofile`] : []),
    ],
  };
}
