import { summarizeLatencies } from "./latency-stats.ts";
import type { LoadAmount, LoadResult } from "./load-result.ts";

/** Sends request number `n`; resolves true when it succeeded, false (or rejects) when it failed. */
export type IssueRequest = (n: number) => Promise<boolean>;

/**
 * Closed-loop load like h2load's `-m`: `concurrency` requests in flight at all
 * times, each completion starting the next. With `seconds`, requests that complete
 * within the window count (as h2load's `-D`), and the window's length divides
 * them; with `requests`, exactly that many are sent and the time to the last
 * completion divides them. Every request gets a distinct `n`, counted from `firstN`.
 * `all` counts every request sent, including those that completed after the window.
 */
export async function runClosedLoop(
  concurrency: number,
  amount: LoadAmount,
  issue: IssueRequest,
  firstN = 0,
): Promise<LoadResult & { readonly nextN: number; readonly all: { ok: number; failed: number } }> {
  let next = firstN;
  const latencies: number[] = [];
  let succeeded = 0;
  let failed = 0;
  const all = { ok: 0, failed: 0 };
  const started = performance.now();
  const deadline = "seconds" in amount ? started + amount.seconds * 1000 : Number.POSITIVE_INFINITY;
  const limit = "requests" in amount ? firstN + amount.requests : Number.POSITIVE_INFINITY;
  let lastEnd = started;

  const worker = async () => {
    while (next < limit && performance.now() < deadline) {
      const n = next++;
      const begin = performance.now();
      const ok = await issue(n).catch(() => false);
      const end = performance.now();
      if (ok) all.ok++;
      else all.failed++;
      if (end > deadline) continue;
      lastEnd = end;
      if (ok) {
        succeeded++;
        latencies.push(end - begin);
      } else {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = "seconds" in amount ? amount.seconds : (lastEnd - started) / 1000;
  return { rps: succeeded / seconds, succeeded, failed, seconds, nextN: next, all, ...summarizeLatencies(latencies) };
}
