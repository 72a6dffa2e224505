import type { LatencySummary } from "./latency-stats.ts";

/** What one measured load run produced, whatever drove it (h2load or a bench driver). */
export interface LoadResult extends LatencySummary {
  /** Requests completed per second in the measured window. */
  readonly rps: number;
  /** Requests that completed successfully as the load generator saw them. */
  readonly succeeded: number;
  /** Requests that failed in any way the load generator could see (stream errors, non-2xx, gRPC status != 0). */
  readonly failed: number;
  /** Length of the measured window, in seconds. */
  readonly seconds: number;
  /**
   * CPU time (µs) the process under test (the server, or the raw pg driver) used per
   * successful call in the window, when /proc tells. Less sensitive than rps to other
   * work on the machine.
   */
  readonly cpuUsPerCall?: number | undefined;
  /** CPU time (µs) all PostgreSQL processes used per successful call in the window. */
  readonly pgCpuUsPerCall?: number | undefined;
  /** Statements the bench database ran per successful call (see usage-snapshot.ts). */
  readonly dbStatementsPerCall?: number | undefined;
}

/** How long (or how much) each measured run lasts. */
export type LoadAmount = { readonly seconds: number } | { readonly requests: number };
