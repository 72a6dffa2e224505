import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config/config.ts";
import type { BenchContext, BenchTarget } from "./bench-context.ts";
import { createBenchDatabase } from "./bench-database.ts";
import { type CpuPinning, detectCpuPinning } from "./cpu-pinning.ts";
import { benchNatsUrl, consultationTargets } from "./consultation-targets.ts";
import { echoTargets } from "./echo-targets.ts";
import { emergencyTargets } from "./emergency-targets.ts";
import { startInterferenceMonitor } from "./interference-monitor.ts";
import { pgTargets } from "./pg-targets.ts";
import { recordTargets } from "./record-targets.ts";
import { waitForQuietMachine } from "./process-cpu.ts";
import { computeRatios, jsonSummary, renderTables, type TargetReport } from "./report.ts";
import { type BenchSettings, readSettings, targetIds } from "./settings.ts";
import { serviceTargets } from "./service-targets.ts";

/** Other work above this many cores (median) during a run makes its figures suspect. */
const disturbedCores = 0.1;

/**
 * `npm run bench`: issue 2's benchmark. Each target's server runs in its own child
 * process, started and stopped in turn; the load comes from h2load (or the bench's
 * own driver where requests must differ). Prints the table and the ratios, writes
 * them to bench/last-results.md, and ends with a one-line JSON summary. Exits 1 when
 * a target failed or any request failed (that is not a result); a missed goal is
 * reported, never asserted.
 */
async function main(): Promise<number> {
  const settings = readSettings(process.env);
  if (spawnSync("h2load", ["--version"]).status !== 0) {
    throw new Error("h2load is not installed (Debian: apt-get install -y nghttp2-client)");
  }
  const pinning = detectCpuPinning();
  const all: readonly BenchTarget[] = [
    ...echoTargets,
    ...serviceTargets,
    ...pgTargets,
    ...recordTargets,
    ...consultationTargets,
    ...emergencyTargets,
  ];
  const selected = targetIds
    .filter((id) => settings.only.includes(id))
    .map((id) => all.find((target) => target.id === id) as BenchTarget);
  const method = methodLines(settings, pinning);
  process.stdout.write(`Patient Service bench\n${method.map((line) => `  ${line}`).join("\n")}\n\n`);

  // A closed pipe (`npm run bench | head`) must not kill the run before the database is dropped.
  process.stdout.on("error", () => undefined);
  const database = await createBenchDatabase();
  // One DATA_DIR for every service child: the key the first one generates verifies the admin's token in the rest.
  const dataDir = await mkdtemp(join(tmpdir(), "patient-bench-data-"));
  const cleanUp = () => Promise.all([database.drop(), rm(dataDir, { recursive: true, force: true })]);
  const stopOnSignal = () => {
    void cleanUp().finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  const started = Date.now();
  const reports: TargetReport[] = [];
  try {
    const context: BenchContext = {
      settings,
      pinning,
      database,
      poolMax: loadConfig({ DATABASE_URL: database.url, DB_POOL_MAX: process.env.DB_POOL_MAX }).dbPoolMax,
      runId: randomBytes(4).toString("hex"),
      profileDir: settings.profileDir ?? (await mkdtemp(join(tmpdir(), "patient-bench-profiles-"))),
      patientNames: [],
      manyPatients: settings.patients,
      dataDir,
    };
    // Waiting for other work to finish is bounded, so the whole bench stays within ~3 minutes.
    let quietWaitBudgetMs = 20_000;
    for (const target of selected) {
      const waitStarted = Date.now();
      await waitForQuietMachine(Math.min(10_000, quietWaitBudgetMs));
      quietWaitBudgetMs = Math.max(0, quietWaitBudgetMs - (Date.now() - waitStarted));
      reports.push(await runTarget(target, context));
    }
    if (settings.profile.length > 0) process.stdout.write(`\nCPU profiles: ${context.profileDir}\n`);
  } finally {
    await cleanUp();
  }

  const ratios = computeRatios(reports, disturbedCores);
  const tables = renderTables(reports, ratios);
  const when = new Date().toISOString();
  process.stdout.write(`\n${tables}\n\n`);
  const machine = `Node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores`;
  const total = `total ${((Date.now() - started) / 1000).toFixed(0)} s`;
  await writeFile(
    new URL("./last-results.md", import.meta.url),
    [
      "# Benchmark: last results",
      "",
      `\`npm run bench\`, ${when}, ${machine}; ${total}.`,
      "",
      ...method.map((line) => `- ${line}`),
      "",
      tables,
      "",
    ].join("\n"),
  );
  const failed = reports.some((report) => report.outcome === undefined || report.outcome.failures > 0);
  const meta = { date: when, node: process.version, streams: settings.streams, ...settings.amount };
  process.stdout.write(`${jsonSummary(reports, ratios, { ...meta, pinned: pinning.enabled, valid: !failed })}\n`);
  return failed ? 1 : 0;
}

/** How this run measures, one line each: printed first, and written above the tables. */
function methodLines(settings: BenchSettings, pinning: CpuPinning): string[] {
  const amount = "seconds" in settings.amount ? `${settings.amount.seconds} s` : `${settings.amount.requests} requests`;
  const streams = settings.streams;
  return [
    `${streams} concurrent streams on one HTTP/2 connection: h2load -c 1 -m ${streams}, or the bench driver (node:http2, one session, ${streams} streams) where requests must differ; ${amount} per target after ${settings.warmupSeconds} s of warm-up`,
    `many patients: GetPatient spread over ${settings.patients} patients, compared with echoes under the same driver (the service batches concurrent reads, so a single patient is its best case)`,
    pinning.description,
    "service targets call as an admin (created once per run, MFA-enrolled through AuthService) with `authorization: Bearer <access token>`: every call is authenticated and access-checked, and every successful GetPatient waits for its group-committed audit entry",
    "each server in its own child process, started and stopped in turn; p50/p99 from every request's latency",
    `consultation targets: service children with NATS_URL=${benchNatsUrl} (real NATS); each booking takes its own slot of the Doctor Service simulator and its own request id; for book-consultation the sibling simulators (Doctor, Notification: gRPC servers) run in a child of their own on the load core, so the server's CPU is the Patient Service's alone (the notification-delay replicas embed theirs); notification-delay runs two replicas on the server core, changes on one, and times each change to its notification on a WatchNotifications stream held by the other (the NATS fan-out path)`,
    `emergency targets: one service child per target with NATS_URL=${benchNatsUrl} and a lane prefix of its own (stream deleted afterwards); a probe child on the load core reads the dispatch subjects with a durable pull consumer and times each CreateEmergency answer to its dispatch message (raw JetStream: each publish call to its receipt); the flood target runs GetPatient and CreatePatient drivers beside it. Latency goals compare p99s; their "rps" is emergencies per second, not a throughput`,
    "CPU µs/call: CPU time of the process under test (server, or raw pg driver) per call, from /proc; PG CPU µs/call: of the PostgreSQL backends of the bench database; DB stmts/call: its transactions per call (pg_stat_database, ~10%)",
    `other load: CPU cores used meanwhile by processes that are neither the bench's nor PostgreSQL's (median of 1 s samples); each target waits for a quiet machine first, and from ${disturbedCores} cores a run is flagged`,
    ...(settings.serverNodeArgs.length > 0 ? [`server Node flags: ${settings.serverNodeArgs.join(" ")}`] : []),
  ];
}

/** Runs one target, watching for other work on the machine, and prints its line. */
async function runTarget(target: BenchTarget, context: BenchContext): Promise<TargetReport> {
  process.stdout.write(`- ${target.label}, ${target.via} ... `);
  const monitor = startInterferenceMonitor();
  try {
    const run = await target.run(context);
    const other = monitor.stop();
    const disturbed = other !== undefined && other.medianCores >= disturbedCores;
    const warning = disturbed
      ? [
          `WARNING: other work on the machine used ${other.medianCores.toFixed(2)} cores (median; max ${other.maxCores.toFixed(2)}) during this run: its figures are low`,
        ]
      : [];
    const outcome = { ...run, otherLoadCores: other?.medianCores, checks: [...run.checks, ...warning] };
    const { load } = outcome;
    process.stdout.write(
      `${load.rps.toFixed(0)} rps, p50 ${load.p50Ms.toFixed(2)} ms, p99 ${load.p99Ms.toFixed(2)} ms` +
        `${load.cpuUsPerCall === undefined ? "" : `, ${load.cpuUsPerCall.toFixed(0)} µs CPU/call`}` +
        `${outcome.failures > 0 ? `, ${outcome.failures} FAILED` : ""}\n    ${outcome.checks.join("\n    ")}\n`,
    );
    return { target, outcome };
  } catch (error) {
    monitor.stop();
    const message = error instanceof Error ? error.message : String(error);
    process.stdout.write(`ERROR\n    ${message.split("\n").join("\n    ")}\n`);
    return { target, error: message };
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
