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
}

/** How long (or how much) each measured run lasts. */
export type LoadAmount = { readonly seconds: number } | { readonly requests: number };
