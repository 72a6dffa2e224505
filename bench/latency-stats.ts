/** Latency percentiles, in milliseconds. */
export interface LatencySummary {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

/**
 * Percentiles by the nearest-rank method over every sample (no histogram
 * buckets, so p99 is a real observed latency). Samples are in milliseconds.
 */
export function summarizeLatencies(samplesMs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  if (sorted.length === 0) return { p50Ms: Number.NaN, p99Ms: Number.NaN, meanMs: Number.NaN, maxMs: Number.NaN };
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    p50Ms: rank(0.5),
    p99Ms: rank(0.99),
    meanMs: sum / sorted.length,
    maxMs: sorted[sorted.length - 1] as number,
  };
}
