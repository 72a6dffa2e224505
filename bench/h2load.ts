import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CpuPinning, pinned } from "./cpu-pinning.ts";
import { summarizeLatencies } from "./latency-stats.ts";
import type { LoadAmount, LoadResult } from "./load-result.ts";

/** One h2load target: a POST of a fixed body with fixed headers. */
export interface H2loadTarget {
  readonly url: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** h2load's own counters, from its summary. */
export interface H2loadCounts {
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  /** Responses with a 2xx status, including those that finished after the measured window. */
  readonly status2xx: number;
  readonly statusOther: number;
}

/**
 * Runs h2load on the load core: one connection (`-c 1`) carrying `streams`
 * concurrent streams (`-m`), for a duration (`-D`) or a number of requests (`-n`).
 * Throughput is h2load's req/s; p50/p99 come from its per-request log
 * (`--log-file`), because its summary has only min/max/mean/sd.
 */
export async function runH2load(
  pinning: CpuPinning,
  target: H2loadTarget,
  amount: LoadAmount,
  streams: number,
): Promise<LoadResult & { readonly counts: H2loadCounts }> {
  const dir = await mkdtemp(join(tmpdir(), "patient-bench-"));
  try {
    const bodyFile = join(dir, "body.bin");
    const logFile = join(dir, "requests.log");
    await writeFile(bodyFile, target.body);
    const args = [
      ...("seconds" in amount ? ["-D", String(amount.seconds)] : ["-n", String(amount.requests)]),
      "-c",
      "1",
      "-m",
      String(streams),
      "-d",
      bodyFile,
      ...Object.entries(target.headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
      `--log-file=${logFile}`,
      target.url,
    ];
    const output = await run(...pinned(pinning, pinning.loadCore, "h2load", args));
    const counts = parseCounts(output);
    const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(output);
    if (!finished) throw new Error(`cannot read h2load's summary:\n${output}`);
    const seconds = Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1);
    const latencies = parseLog(await readFile(logFile, "utf8"));
    return {
      rps: Number(finished[3]),
      succeeded: counts.succeeded,
      failed: counts.failed + counts.errored + counts.timeout + counts.statusOther,
      seconds,
      counts,
      ...summarizeLatencies(latencies),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseCounts(output: string): H2loadCounts {
  const requests =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      output,
    );
  const statuses = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
  if (!requests || !statuses) throw new Error(`cannot read h2load's counters:\n${output}`);
  const n = (match: RegExpExecArray, index: number) => Number(match[index]);
  return {
    done: n(requests, 3),
    succeeded: n(requests, 4),
    failed: n(requests, 5),
    errored: n(requests, 6),
    timeout: n(requests, 7),
    status2xx: n(statuses, 1),
    statusOther: n(statuses, 2) + n(statuses, 3) + n(statuses, 4),
  };
}

/** Request times (ms) of the successful rows: `start µs <TAB> status <TAB> elapsed µs`. */
function parseLog(log: string): number[] {
  const latencies: number[] = [];
  for (const line of log.split("\n")) {
    const [, status, elapsed] = line.split("\t");
    if (status?.startsWith("2") && elapsed !== undefined) latencies.push(Number(elapsed) / 1000);
  }
  return latencies;
}

function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(" ")} exited ${code}:\n${output}`)),
    );
  });
}
