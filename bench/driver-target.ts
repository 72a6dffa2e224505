import type { BenchContext, TargetOutcome } from "./bench-context.ts";
import type { BodySource, H2LoadOptions, H2LoadReport } from "./h2-load.ts";
import { type ChildSpec, childStats, startChild } from "./pinned-child.ts";
import { usagePerCall, usageSnapshot } from "./usage-snapshot.ts";
import { connectJsonHeaders, grpcHeaders } from "./verify-request.ts";

/** What a driver-based target sends, after its own checks against the started server. */
export interface DriverLoad {
  readonly path: string;
  readonly protocol: "grpc" | "connect";
  readonly bodies: BodySource;
  /** Headers sent besides the protocol's own, for example `authorization`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** What `prepare` verified, for the report. */
  readonly checks: readonly string[];
}

/**
 * A server target under the bench's own driver (bench/h2-load.ts, on the load
 * core) instead of h2load: start the server, let `prepare` create data and verify,
 * warm up and measure, then check the server's counters: every call it answered
 * must have succeeded, and it must have answered at least every call the driver saw
 * succeed. `after` adds a check of its own (stored rows, say).
 */
export async function measureServerWithDriver(
  context: BenchContext,
  server: ChildSpec,
  prepare: (port: number) => Promise<DriverLoad>,
  after?: (report: H2LoadReport) => Promise<{ failures: number; check: string }>,
): Promise<TargetOutcome> {
  const { settings, pinning } = context;
  const child = startChild(pinning, server);
  try {
    const { port } = await child.next("ready");
    const load = await prepare(port);
    const before = await childStats(child);
    const options: H2LoadOptions = {
      origin: `http://127.0.0.1:${port}`,
      path: load.path,
      headers: { ...(load.protocol === "grpc" ? grpcHeaders : connectJsonHeaders), ...load.headers },
      protocol: load.protocol,
      bodies: load.bodies,
      amount: settings.amount,
      warmupSeconds: settings.warmupSeconds,
      concurrency: settings.streams,
    };
    const driver = startChild(pinning, { script: "h2-load.ts", core: pinning.loadCore, options });
    let report: H2LoadReport;
    let usage: ReturnType<typeof usagePerCall>;
    try {
      await driver.next("measuring", 120_000);
      const usageBefore = await usageSnapshot(context.database, child.process.pid);
      report = (await driver.next("result", 600_000)).result as H2LoadReport;
      const usageAfter = await usageSnapshot(context.database, child.process.pid);
      usage = usagePerCall(usageBefore, usageAfter, report.measured.succeeded);
    } finally {
      await driver.stop();
    }
    const stats = await childStats(child);
    const ok = stats.ok - before.ok;
    const failedOnServer = stats.failed - before.failed;
    const extra = after ? await after(report) : undefined;
    return {
      load: { ...report.measured, ...usage },
      failures: report.total.failed + failedOnServer + Math.max(0, report.total.ok - ok) + (extra?.failures ?? 0),
      checks: [
        ...load.checks,
        `driver: ${report.total.ok} ok, ${report.total.failed} failed (warm-up included); server counted ${ok} ok, ${failedOnServer} failed${extra ? `; ${extra.check}` : ""}`,
      ],
    };
  } finally {
    await child.stop();
  }
}
