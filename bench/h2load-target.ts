import type { BenchContext, TargetOutcome } from "./bench-context.ts";
import { type H2loadTarget, runH2load } from "./h2load.ts";
import { type ChildSpec, childStats, startChild } from "./pinned-child.ts";
import { usagePerCall, usageSnapshot } from "./usage-snapshot.ts";

/**
 * The common run of a server target under h2load: start the server child, let
 * `prepare` verify the request and build it, warm up, then measure with the
 * server's own counters read before and after. A 2xx response the server did not
 * count as a successful call (a gRPC error travels in a 200) is a failure.
 */
export async function measureServerWithH2load(
  context: BenchContext,
  server: ChildSpec,
  prepare: (port: number) => Promise<H2loadTarget>,
): Promise<TargetOutcome> {
  const { settings, pinning } = context;
  const child = startChild(pinning, server);
  try {
    const { port } = await child.next("ready");
    const target = await prepare(port);
    const warmup = await runH2load(pinning, target, { seconds: settings.warmupSeconds }, settings.streams);
    if (warmup.failed > 0) throw new Error(`${target.url}: ${warmup.failed} requests failed during warm-up`);
    const before = await childStats(child);
    const usageBefore = await usageSnapshot(context.database, child.process.pid);
    const measured = await runH2load(pinning, target, settings.amount, settings.streams);
    const usageAfter = await usageSnapshot(context.database, child.process.pid);
    const after = await childStats(child);
    const load = { ...measured, ...usagePerCall(usageBefore, usageAfter, measured.succeeded) };
    const ok = after.ok - before.ok;
    const failedOnServer = after.failed - before.failed;
    const unconfirmed = Math.max(0, load.counts.status2xx - ok);
    return {
      load,
      failures: load.failed + failedOnServer + unconfirmed,
      checks: [
        `verified one request with the exact h2load bytes${target.headers["content-type"] === "application/grpc" ? " and a grpc-js call" : ""}`,
        `h2load: ${load.counts.status2xx} 2xx, ${load.failed} failed; server counted ${ok} ok, ${failedOnServer} failed`,
      ],
    };
  } finally {
    await child.stop();
  }
}
