import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { GetPatientRequestSchema, GetPatientResponseSchema } from "../gen/telemed/patient/v1/patient_service_pb.js";
import { ensureBenchAdmin } from "./bench-admin.ts";
import { type BenchContext, type BenchTarget, serverSpec, type TargetOutcome } from "./bench-context.ts";
import { ensureBenchPatients, serviceEnv } from "./bench-patient.ts";
import { benchNatsUrl } from "./consultation-targets.ts";
import type { EmergencyProbeOptions, EmergencyProbeReport } from "./emergency-probe.ts";
import { grpcFrame } from "./grpc-frame.ts";
import { grpcJsUnary } from "./grpc-js-call.ts";
import type { H2LoadOptions, H2LoadReport } from "./h2-load.ts";
import { summarizeLatencies } from "./latency-stats.ts";
import type { LoadResult } from "./load-result.ts";
import type { DelayControl } from "./notification-delay.ts";
import { type BenchChild, childStats, startChild } from "./pinned-child.ts";
import { processCpuSeconds } from "./process-cpu.ts";
import { bearerHeader, grpcHeaders } from "./verify-request.ts";

const getPatientPath = "/telemed.patient.v1.PatientService/GetPatient";
const createPatientPath = "/telemed.patient.v1.PatientService/CreatePatient";

/** Patients the emergencies are raised for, in turn (the merge window is 0, so each request is an emergency of its own). */
const emergencyPatients = 64;
/** Pause between one emergency's dispatch and the next request: emergencies are rare, not a load of their own. */
const gapMs = 20;
const timeoutMs = 15_000;

/** A lane prefix of this run and target: its own stream, subjects and consumers on the shared NATS. */
const lanePrefix = (context: BenchContext, tag: string) => `bench_${context.runId}_${tag}`;

/** Deletes a lane's stream (and so its consumers); quiet when it is already gone. */
async function deleteLaneStream(prefix: string): Promise<void> {
  const nc = await connect({ servers: benchNatsUrl, name: "bench-cleanup", timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`${prefix}EMERGENCY`).catch(() => false);
  } finally {
    await nc.close();
  }
}

const ms = (value: number) => value.toFixed(1);
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));
const measuredSeconds = (context: BenchContext) =>
  "seconds" in context.settings.amount ? context.settings.amount.seconds : 8;

/** The probe's samples as the target's load line: p50/p99 of the delays, rps as emergencies (or messages) per second. */
function probeLoad(report: EmergencyProbeReport): LoadResult {
  return {
    ...summarizeLatencies(report.delays),
    rps: report.seconds > 0 ? report.delays.length / report.seconds : Number.NaN,
    succeeded: report.delays.length,
    failed: report.failed,
    seconds: report.seconds,
  };
}

/**
 * The floor: raw JetStream publish-to-consume on a stream like the lane's (file
 * storage, one replica, a duplicate window; jetstream-lane.ts) with a durable pull
 * consumer like the Paramedic Service's. One message at a time, timed from the
 * publish call to the consumer's receipt, in the probe child on the load core.
 */
async function rawJetStream(context: BenchContext): Promise<TargetOutcome> {
  const prefix = lanePrefix(context, "raw");
  const options: EmergencyProbeOptions = { natsUrl: benchNatsUrl, prefix, mode: "raw", gapMs, timeoutMs };
  const probe = startChild(context.pinning, { script: "emergency-probe.ts", core: context.pinning.loadCore, options });
  try {
    await probe.next("ready", 60_000);
    const report = await runProbe(context, probe);
    const load = probeLoad(report);
    const acks = summarizeLatencies(report.callMs);
    return {
      load,
      failures: report.failed + report.duplicates,
      checks: [
        `${report.delays.length} messages timed one at a time (${gapMs} ms apart), ${report.failed} failed, ${report.duplicates} duplicates; publish to PubAck p50 ${ms(acks.p50Ms)} ms, p99 ${ms(acks.p99Ms)} ms; publish to consume max ${ms(load.maxMs)} ms`,
        ...report.problems.map((text) => `problem: ${text}`),
      ],
    };
  } finally {
    await probe.stop();
    await deleteLaneStream(prefix);
  }
}

/** Warm-up, measured window and result of a probe already `ready`, with nothing else running. */
async function runProbe(context: BenchContext, probe: BenchChild): Promise<EmergencyProbeReport> {
  const control = (message: DelayControl) => probe.process.send(message);
  control({ type: "go" });
  await sleep(context.settings.warmupSeconds * 1000);
  control({ type: "measure" });
  await sleep(measuredSeconds(context) * 1000);
  control({ type: "finish" });
  return (await probe.next("result", 60_000)).result as EmergencyProbeReport;
}

/**
 * Routine traffic that saturates the service: GetPatient of many patients (gRPC,
 * `streams` in flight) and CreatePatient (gRPC, a quarter as many), each from the
 * bench driver on the load core, as the admin. Every read is audited through the
 * group-committed batch writer, every create in its own transaction: both contend
 * with the emergencies for the server core, the database and the audit chain.
 */
async function routineDrivers(context: BenchContext, port: number): Promise<{ drivers: BenchChild[]; check: string }> {
  const auth = bearerHeader(await ensureBenchAdmin(context, port));
  const names = (await ensureBenchPatients(context, port, context.manyPatients)).slice(0, context.manyPatients);
  const first = names[0] as string;
  const read = fromBinary(
    GetPatientResponseSchema,
    await grpcJsUnary(
      `127.0.0.1:${port}`,
      getPatientPath,
      toBinary(GetPatientRequestSchema, create(GetPatientRequestSchema, { name: first })),
      auth,
    ),
  );
  if (read.patient?.name !== first) throw new Error(`GetPatient of ${first} answered ${read.patient?.name}`);
  const common = {
    origin: `http://127.0.0.1:${port}`,
    headers: { ...grpcHeaders, ...auth },
    protocol: "grpc" as const,
    amount: context.settings.amount,
    warmupSeconds: context.settings.warmupSeconds,
  };
  const reads: H2LoadOptions = {
    ...common,
    path: getPatientPath,
    bodies: {
      kind: "rotate",
      bodies: names.map((name) =>
        grpcFrame(toBinary(GetPatientRequestSchema, create(GetPatientRequestSchema, { name }))).toString("base64"),
      ),
    },
    concurrency: context.settings.streams,
  };
  const creates: H2LoadOptions = {
    ...common,
    path: createPatientPath,
    bodies: { kind: "create-patient", prefix: `${context.runId}e` },
    concurrency: Math.max(1, Math.round(context.settings.streams / 4)),
  };
  const drivers = [reads, creates].map((options) =>
    startChild(context.pinning, { script: "h2-load.ts", core: context.pinning.loadCore, options }),
  );
  return {
    drivers,
    check: `routine load: GetPatient over ${names.length} patients (${reads.concurrency} streams) and CreatePatient (${creates.concurrency} streams), bench driver, as the admin`,
  };
}

/**
 * Emergency ack-to-paramedic: the time from CreateEmergency's answer (the ack: the
 * emergency, its outbox row and audit entry are committed) to the arrival of its
 * dispatch request at a durable pull consumer on the lane's dispatch subjects (the
 * probe, on the load core, reading as the Paramedic Service does; the service's own
 * Paramedic simulator consumes too and sends status events back, which the service
 * applies). One service child with NATS and a lane prefix of its own. `loaded`:
 * meanwhile routine traffic saturates the service, and the emergencies are timed
 * during its measured window.
 */
async function emergencyDispatch(context: BenchContext, loaded: boolean): Promise<TargetOutcome> {
  const id = loaded ? "emergency-ack-to-paramedic-loaded" : "emergency-ack-to-paramedic";
  const prefix = lanePrefix(context, loaded ? "flood" : "idle");
  const env = {
    ...serviceEnv(context),
    NATS_URL: benchNatsUrl,
    EMERGENCY_LANE_PREFIX: prefix,
    EMERGENCY_MERGE_WINDOW_SECONDS: "0",
  };
  const service = startChild(context.pinning, serverSpec(context, id, { script: "service-server.ts", env }));
  const children: BenchChild[] = [service];
  try {
    const { port } = await service.next("ready");
    const auth = bearerHeader(await ensureBenchAdmin(context, port));
    const parents = (await ensureBenchPatients(context, port, emergencyPatients)).slice(0, emergencyPatients);
    const options: EmergencyProbeOptions = {
      natsUrl: benchNatsUrl,
      prefix,
      mode: "service",
      address: `127.0.0.1:${port}`,
      authorization: auth.authorization,
      parents,
      gapMs,
      timeoutMs,
    };
    const checks: string[] = [];
    let routine: { reports: H2LoadReport[] } | undefined;
    const probe = startChild(context.pinning, {
      script: "emergency-probe.ts",
      core: context.pinning.loadCore,
      options,
    });
    children.push(probe);
    await probe.next("ready", 60_000);
    const before = await childStats(service);
    let report: EmergencyProbeReport;
    if (!loaded) {
      report = await runProbe(context, probe);
    } else {
      const { drivers, check } = await routineDrivers(context, port);
      children.push(...drivers);
      checks.push(check);
      const control = (message: DelayControl) => probe.process.send(message);
      control({ type: "go" });
      await Promise.all(drivers.map((driver) => driver.next("measuring", 120_000)));
      control({ type: "measure" });
      const cpuBefore = { cpu: processCpuSeconds(service.process.pid), at: performance.now() };
      const reports = await Promise.all(
        drivers.map(async (driver) => (await driver.next("result", 600_000)).result as H2LoadReport),
      );
      control({ type: "finish" });
      const cpuAfter = processCpuSeconds(service.process.pid);
      if (cpuBefore.cpu !== undefined && cpuAfter !== undefined) {
        const cores = (cpuAfter - cpuBefore.cpu) / ((performance.now() - cpuBefore.at) / 1000);
        checks.push(`the service process used ${cores.toFixed(2)} cores meanwhile (1.00: its core saturated)`);
      }
      report = (await probe.next("result", 60_000)).result as EmergencyProbeReport;
      routine = { reports };
    }
    const after = await childStats(service);
    const stored = await context.database.query<{ rows: number; dispatched: number; unsent: number }>(
      `select count(*)::int as rows, count("dispatched_at")::int as dispatched, ` +
        `(select count(*)::int from "emergency_outbox" where "emergency_id" = any($1::uuid[]) and "sent_at" is null) as unsent ` +
        `from "emergencies" where "id" = any($1::uuid[])`,
      [report.emergencyIds],
    );
    const rows = stored.rows[0] ?? { rows: 0, dispatched: 0, unsent: 0 };
    const answered = report.emergencyIds.length;
    const rowFailures = Math.abs(rows.rows - answered) + (rows.rows - rows.dispatched) + rows.unsent;
    const load = probeLoad(report);
    const calls = summarizeLatencies(report.callMs);
    const total = summarizeLatencies(report.totalMs);
    checks.push(
      `${report.delays.length} emergencies timed one at a time (${gapMs} ms apart, over ${parents.length} patients), ${report.failed} failed, ${report.duplicates} dispatch duplicates; ack to dispatch max ${ms(load.maxMs)} ms; probe ${report.raisedPriority ? "at nice -10" : "at normal priority"}`,
      `CreateEmergency calls: p50 ${ms(calls.p50Ms)} ms, p99 ${ms(calls.p99Ms)} ms; request to dispatch: p50 ${ms(total.p50Ms)} ms, p99 ${ms(total.p99Ms)} ms`,
      `${rows.rows} of ${answered} answered emergencies stored, ${rows.dispatched} marked dispatched, ${rows.unsent} outbox rows unsent; server counted ${after.ok - before.ok} ok, ${after.failed - before.failed} failed`,
      ...report.problems.map((text) => `problem: ${text}`),
    );
    let routineFailures = 0;
    for (const [index, driverReport] of (routine?.reports ?? []).entries()) {
      const measured = driverReport.measured;
      routineFailures += driverReport.total.failed;
      checks.push(
        `${index === 0 ? "GetPatient" : "CreatePatient"} beside it: ${measured.rps.toFixed(0)} rps, p50 ${ms(measured.p50Ms)} ms, p99 ${ms(measured.p99Ms)} ms; driver ${driverReport.total.ok} ok, ${driverReport.total.failed} failed`,
      );
    }
    return {
      load,
      failures: report.failed + report.duplicates + rowFailures + routineFailures + (after.failed - before.failed),
      checks,
    };
  } finally {
    // The probe and drivers first (they hold connections), then the service, then the stream.
    for (const child of children.reverse()) await child.stop();
    await deleteLaneStream(prefix).catch(() => undefined);
  }
}

/** Issue 5's precedence targets (functional safety 3). */
export const emergencyTargets: readonly BenchTarget[] = [
  {
    id: "jetstream-publish-consume",
    label: "raw JetStream publish -> durable pull consumer (p50/p99: delay; rps: messages/s)",
    via: "@nats-io/jetstream, file storage, one at a time",
    run: rawJetStream,
  },
  {
    id: "emergency-ack-to-paramedic",
    label: "emergency: CreateEmergency answer -> dispatch at the paramedic consumer, idle",
    via: "gRPC (grpc-js), outbox relay, JetStream lane; one at a time",
    run: (context) => emergencyDispatch(context, false),
  },
  {
    id: "emergency-ack-to-paramedic-loaded",
    label: "emergency: the same, under a routine flood",
    via: "as above, while the bench driver saturates GetPatient and CreatePatient",
    run: (context) => emergencyDispatch(context, true),
  },
];
