import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Consultation_State } from "../gen/telemed/patient/v1/consultation_pb.js";
import {
  CreateConsultationRequestSchema,
  CreateConsultationResponseSchema,
  ListFreeSlotsRequestSchema,
  ListFreeSlotsResponseSchema,
} from "../gen/telemed/patient/v1/consultation_service_pb.js";
import {
  CreatePatientRequestSchema,
  CreatePatientResponseSchema,
} from "../gen/telemed/patient/v1/patient_service_pb.js";
import { uuidV7 } from "../src/shared/uuid-v7.ts";
import { ensureBenchAdmin } from "./bench-admin.ts";
import { type BenchContext, type BenchTarget, serverSpec, type TargetOutcome } from "./bench-context.ts";
import { ensureBenchPatients, ensureMigrated, serviceEnv } from "./bench-patient.ts";
import { type BookingSource, bookConsultationFrames, bookConsultationRequest } from "./book-consultation-frames.ts";
import type { ConsultationPgLoadOptions } from "./consultation-pg-load.ts";
import { type SlotRange, SlotSequence, slotRanges } from "./consultation-slots.ts";
import { type DriverLoad, measureServerWithDriver } from "./driver-target.ts";
import { grpcUnframe } from "./grpc-frame.ts";
import { grpcJsUnary } from "./grpc-js-call.ts";
import { grpcStatusOf, h2Post } from "./h2-request.ts";
import type { H2LoadOptions, H2LoadReport } from "./h2-load.ts";
import { summarizeLatencies } from "./latency-stats.ts";
import type { LoadResult } from "./load-result.ts";
import type { DelayControl, NotificationDelayOptions, NotificationDelayReport } from "./notification-delay.ts";
import { benchEmail, benchPatient, benchPatientColumns } from "./patient-fixture.ts";
import { type PgChildBasics, runPgChild } from "./pg-targets.ts";
import { type BenchChild, startChild } from "./pinned-child.ts";
import { processCpuSeconds } from "./process-cpu.ts";
import { bearerHeader, grpcHeaders } from "./verify-request.ts";

const createConsultationPath = "/telemed.patient.v1.ConsultationService/CreateConsultation";
const listFreeSlotsPath = "/telemed.patient.v1.ConsultationService/ListFreeSlots";
const createPatientPath = "/telemed.patient.v1.PatientService/CreatePatient";

/**
 * NATS for every consultation target's service child (BENCH_NATS_URL, default the
 * local server): a booking's notification is announced on it, and the
 * notification-delay targets measure the fan-out through it between two replicas.
 */
export const benchNatsUrl = process.env.BENCH_NATS_URL || "nats://127.0.0.1:4222";

/**
 * How many patients the bookings are spread over (BENCH_BOOKING_PATIENTS, default 64,
 * one per stream in flight). Each patient's notifications take sequence numbers from
 * one row locked until commit, so bookings of one patient commit one at a time; a
 * load of one patient would measure that lock, which no real patient ever queues on.
 */
function bookingPatients(context: BenchContext): number {
  const raw = process.env.BENCH_BOOKING_PATIENTS;
  const value = raw === undefined || raw === "" ? context.settings.streams : Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 1024) {
    throw new Error(`BENCH_BOOKING_PATIENTS must be a whole number from 1 to 1024, got "${raw}"`);
  }
  return value;
}

/** Request id tags (second group of the UUID), one per use, so no two uses share a request id. */
const tags = { verify: 1, book: 2, pg: 3, changes: 4, changesLoaded: 5, loadBesideChanges: 6 } as const;

function consultationEnv(context: BenchContext): Record<string, string> {
  return { ...serviceEnv(context), NATS_URL: benchNatsUrl };
}

/**
 * Checks, before a booking load, that the bench's slot grid is the Doctor Service
 * simulator's: for every doctor, ListFreeSlots (through the service, grpc-js, as the
 * admin) of the range's first week lists exactly the slots the bench derived.
 */
async function verifySlotGrid(port: number, auth: { authorization: string }, range: SlotRange): Promise<string> {
  const slots = new SlotSequence(range);
  const from = range.fromMs;
  const to = from + 7 * 86_400_000;
  let compared = 0;
  for (const doctorId of slots.doctorIds()) {
    const request = create(ListFreeSlotsRequestSchema, {
      parent: `doctors/${doctorId}`,
      startTime: timestampFromMs(from),
      endTime: timestampFromMs(to),
      pageSize: 200,
    });
    const answer = fromBinary(
      ListFreeSlotsResponseSchema,
      await grpcJsUnary(`127.0.0.1:${port}`, listFreeSlotsPath, toBinary(ListFreeSlotsRequestSchema, request), auth),
    );
    const listed = answer.slots.map((slot) => slot.name).join(",");
    const derived = slots.slotsOf(doctorId, from, to).join(",");
    if (answer.nextPageToken !== "" || listed !== derived) {
      throw new Error(
        `ListFreeSlots of doctors/${doctorId} disagrees with the bench's slot grid:\n${listed}\n${derived}`,
      );
    }
    compared += answer.slots.length;
  }
  return `ListFreeSlots of ${slots.doctorIds().length} doctors over the range's first week lists exactly the ${compared} slots the bench derives from the simulator's calendar`;
}

/**
 * Books slots `first` and `first + 1` of the verify range: one with the exact bytes
 * the load driver sends (frame builder, raw HTTP/2), one with grpc-js; each must
 * answer SCHEDULED for that slot and that patient.
 */
async function verifyBooking(
  context: BenchContext,
  port: number,
  auth: { authorization: string },
  parents: readonly string[],
  first: number,
): Promise<string> {
  const source: BookingSource = { runId: context.runId, tag: tags.verify, range: slotRanges.verify, parents };
  const slots = new SlotSequence(source.range);
  const check = (bytes: Buffer, n: number, how: string) => {
    const expected = bookConsultationRequest(source, slots, n);
    const booked = fromBinary(CreateConsultationResponseSchema, bytes).consultation;
    if (
      booked?.state !== Consultation_State.SCHEDULED ||
      booked.slot !== expected.consultation?.slot ||
      !booked.name.startsWith(`${expected.parent}/consultations/`)
    ) {
      throw new Error(`CreateConsultation (${how}) answered ${JSON.stringify(booked)}`);
    }
  };
  const frames = bookConsultationFrames(source);
  const response = await h2Post(
    `http://127.0.0.1:${port}`,
    createConsultationPath,
    { ...grpcHeaders, ...auth },
    frames(first),
  );
  const status = grpcStatusOf(response);
  if (response.status !== 200 || status.code !== 0) {
    throw new Error(
      `CreateConsultation over gRPC: HTTP ${response.status}, grpc-status ${status.code} ${status.message}`,
    );
  }
  check(grpcUnframe(response.body), first, "the load's bytes");
  const viaClient = await grpcJsUnary(
    `127.0.0.1:${port}`,
    createConsultationPath,
    toBinary(CreateConsultationRequestSchema, bookConsultationRequest(source, slots, first + 1)),
    auth,
  );
  check(viaClient, first + 1, "grpc-js");
  return "booked one slot with the load's exact bytes and one with grpc-js, as the admin for a bench patient: both SCHEDULED";
}

/** Consultations stored in a slot range, and how many of them are SCHEDULED. */
async function countBookings(context: BenchContext, range: SlotRange): Promise<{ rows: number; scheduled: number }> {
  const result = await context.database.query<{ rows: number; scheduled: number }>(
    `select count(*)::int as rows, (count(*) filter (where "state" = 'scheduled'))::int as scheduled ` +
      `from "consultations" where "start_time" >= $1 and "start_time" < $2`,
    [new Date(range.fromMs).toISOString(), new Date(range.toMs).toISOString()],
  );
  return result.rows[0] ?? { rows: 0, scheduled: 0 };
}

/** Every successful booking must be exactly one stored, SCHEDULED consultation in its range. */
async function checkBookings(context: BenchContext, range: SlotRange, ok: number) {
  const { rows, scheduled } = await countBookings(context, range);
  return {
    failures: Math.abs(rows - ok) + (rows - scheduled),
    check: `${rows} consultations stored in the load's slot range, ${scheduled} of them SCHEDULED`,
  };
}

/** The driver's booking load: request `n` books slot `n` of `range` for `parents[n % length]`. */
function bookingLoad(
  context: BenchContext,
  range: SlotRange,
  tag: number,
  parents: readonly string[],
  auth: { authorization: string },
  checks: string[],
): DriverLoad {
  return {
    path: createConsultationPath,
    protocol: "grpc",
    bodies: { kind: "book-consultation", runId: context.runId, tag, range, parents },
    headers: auth,
    checks,
  };
}

/**
 * The sibling simulators in a child of their own on the load core, and the service
 * environment that points every sibling at them (the payment provider stays embedded:
 * it is not a sibling service). `run` gets that environment and the child's pid.
 */
async function withSiblingSimulators<T>(
  context: BenchContext,
  run: (env: Record<string, string>, pid: number | undefined) => Promise<T>,
): Promise<T> {
  const simulators = startChild(context.pinning, { script: "simulators-server.ts", core: context.pinning.loadCore });
  try {
    const { port } = await simulators.next("ready");
    const url = `http://127.0.0.1:${port}`;
    const env = {
      DOCTOR_SERVICE_URL: url,
      PARAMEDIC_SERVICE_URL: url,
      XRAY_SERVICE_URL: url,
      NOTIFICATION_SERVICE_URL: url,
      PAYMENT_SIMULATOR: "embedded",
    };
    return await run(env, simulators.process.pid);
  } finally {
    await simulators.stop();
  }
}

/**
 * BookConsultation (CreateConsultation over gRPC), distinct slots, as the admin for
 * bench patients. The Doctor and Notification Services are simulators in their own
 * process (withSiblingSimulators), whose CPU per booking the checks report.
 */
function bookConsultation(context: BenchContext): Promise<TargetOutcome> {
  const range = slotRanges.bookConsultation;
  return withSiblingSimulators(context, (siblings, simulatorPid) => {
    const simulatorCpuBefore = processCpuSeconds(simulatorPid);
    return measureServerWithDriver(
      context,
      serverSpec(context, "book-consultation", {
        script: "service-server.ts",
        env: { ...consultationEnv(context), ...siblings },
      }),
      async (port) => {
        const auth = bearerHeader(await ensureBenchAdmin(context, port));
        const parents = (await ensureBenchPatients(context, port, bookingPatients(context))).slice(
          0,
          bookingPatients(context),
        );
        const checks = [
          await verifySlotGrid(port, auth, range),
          await verifyBooking(context, port, auth, parents, 0),
          `bookings spread over ${parents.length} patients, request n books slot n (its own doctor and time) with its own request id`,
        ];
        return bookingLoad(context, range, tags.book, parents, auth, checks);
      },
      async (report) => {
        const checked = await checkBookings(context, range, report.total.ok);
        const simulatorCpu = (processCpuSeconds(simulatorPid) ?? Number.NaN) - (simulatorCpuBefore ?? Number.NaN);
        const perBooking = Math.round((simulatorCpu * 1e6) / Math.max(1, report.total.ok));
        return {
          failures: checked.failures,
          check: `${checked.check}; the sibling simulators (own process, load core) used ${perBooking} µs CPU per booking, warm-up and checks included`,
        };
      },
    );
  });
}

/** Patient ids for the raw INSERTs: the bookings' patients when they exist, else rows inserted here. */
export async function pgPatientIds(context: BenchContext, count: number, prefix = "q"): Promise<string[]> {
  const ids = context.patientNames.slice(0, count).map((name) => name.slice("patients/".length));
  const now = new Date().toISOString();
  for (let i = ids.length; i < count; i++) {
    const columns = {
      ...benchPatientColumns(benchEmail(`${context.runId}${prefix}`, i)),
      id: uuidV7(),
      created_at: now,
      updated_at: now,
    };
    const names = Object.keys(columns);
    await context.database.query(
      `insert into "patients" (${names.map((name) => `"${name}"`).join(", ")}) values (${names.map((_, j) => `$${j + 1}`).join(", ")})`,
      Object.values(columns),
    );
    ids.push(columns.id);
  }
  return ids;
}

/** The floor: a raw `pg` INSERT of a booking row, distinct slots, a pool of DB_POOL_MAX. */
async function pgInsertConsultation(context: BenchContext): Promise<TargetOutcome> {
  await ensureMigrated(context);
  const range = slotRanges.pgInsertConsultation;
  const options: Omit<ConsultationPgLoadOptions, keyof PgChildBasics> = {
    runId: context.runId,
    tag: tags.pg,
    range,
    patientIds: await pgPatientIds(context, bookingPatients(context)),
    bookedBy: `accounts/${uuidV7()}`,
  };
  // On the server core, where the service stands (as the pg-insert target does).
  const report = await runPgChild(context, "consultation-pg-load.ts", options);
  const { rows } = await countBookings(context, range);
  return {
    load: report.measured,
    failures: report.total.failed + Math.abs(rows - report.total.ok),
    checks: [
      `driver: ${report.total.ok} ok, ${report.total.failed} failed (warm-up included); ${rows} rows stored in its slot range`,
    ],
  };
}

/** A patient of its own for a watching stream (nothing else notifies them), created through the service. */
async function watchedPatient(context: BenchContext, port: number, auth: { authorization: string }, prefix: string) {
  const request = create(CreatePatientRequestSchema, {
    patient: benchPatient(benchEmail(`${context.runId}${prefix}`, 0)),
  });
  const answer = await grpcJsUnary(
    `127.0.0.1:${port}`,
    createPatientPath,
    toBinary(CreatePatientRequestSchema, request),
    auth,
  );
  const name = fromBinary(CreatePatientResponseSchema, answer).patient?.name;
  if (!name?.startsWith("patients/")) throw new Error(`CreatePatient answered without a resource name: ${name}`);
  return name;
}

const ms = (value: number) => value.toFixed(1);

/**
 * The delay from a consultation status change to its notification on a watching
 * WatchNotifications stream. Two replicas of the service (same database, same NATS)
 * run on the server core; the changes (book, then cancel, one at a time, as the admin
 * for a patient of their own) go to the first, and streams of that patient are open
 * on both. The row is the stream on the other replica, which hears of the change only
 * through NATS; the same replica's stream (woken directly by the commit) is in the
 * checks. `loaded`: meanwhile the bench driver books distinct slots on the first
 * replica with 64 streams, and the changes are timed during its measured window.
 */
async function notificationDelay(context: BenchContext, loaded: boolean): Promise<TargetOutcome> {
  const id = loaded ? "notification-delay-loaded" : "notification-delay";
  const { settings, pinning } = context;
  const changer = startChild(
    pinning,
    serverSpec(context, id, { script: "service-server.ts", env: consultationEnv(context) }),
  );
  const other = startChild(pinning, {
    script: "service-server.ts",
    core: pinning.serverCore,
    // Same DATA_DIR (its keys verify the admin's token), but a journal of its own: an
    // instance locks its emergency journal, as two instances of a deployment would.
    env: { ...consultationEnv(context), EMERGENCY_JOURNAL_DIR: join(context.dataDir, "emergency-journal-replica-2") },
  });
  const children: BenchChild[] = [changer, other];
  try {
    const [{ port }, { port: otherPort }] = await Promise.all([changer.next("ready"), other.next("ready")]);
    const token = await ensureBenchAdmin(context, port);
    const auth = bearerHeader(token);
    const watched = await watchedPatient(context, port, auth, loaded ? "x" : "w");
    const range = loaded ? slotRanges.notificationChangesLoaded : slotRanges.notificationChanges;
    const checks: string[] = [];
    const options: NotificationDelayOptions = {
      changeAddress: `127.0.0.1:${port}`,
      watches: [
        { label: "same replica", address: `127.0.0.1:${port}` },
        { label: "other replica (NATS)", address: `127.0.0.1:${otherPort}` },
      ],
      authorization: auth.authorization,
      booking: { runId: context.runId, tag: loaded ? tags.changesLoaded : tags.changes, range, parents: [watched] },
      timeoutMs: 10_000,
    };
    const watcher = startChild(pinning, { script: "notification-delay.ts", core: pinning.loadCore, options });
    children.push(watcher);
    await watcher.next("ready", 60_000);
    const control = (message: DelayControl) => watcher.process.send(message);
    const measuredSeconds = "seconds" in settings.amount ? settings.amount.seconds : 8;

    let load: { report: H2LoadReport; rows: { failures: number; check: string } } | undefined;
    if (!loaded) {
      control({ type: "go" });
      await sleep(settings.warmupSeconds * 1000);
      control({ type: "measure" });
      await sleep(measuredSeconds * 1000);
      control({ type: "finish" });
    } else {
      const loadRange = slotRanges.notificationLoad;
      const parents = (await ensureBenchPatients(context, port, bookingPatients(context))).slice(
        0,
        bookingPatients(context),
      );
      checks.push(await verifySlotGrid(port, auth, loadRange));
      checks.push(await verifyBooking(context, port, auth, parents, 2));
      const driverLoad = bookingLoad(context, loadRange, tags.loadBesideChanges, parents, auth, []);
      const driverOptions: H2LoadOptions = {
        origin: `http://127.0.0.1:${port}`,
        path: driverLoad.path,
        headers: { ...grpcHeaders, ...driverLoad.headers },
        protocol: "grpc",
        bodies: driverLoad.bodies,
        amount: settings.amount,
        warmupSeconds: settings.warmupSeconds,
        concurrency: settings.streams,
      };
      const driver = startChild(pinning, { script: "h2-load.ts", core: pinning.loadCore, options: driverOptions });
      children.push(driver);
      control({ type: "go" });
      await driver.next("measuring", 120_000);
      control({ type: "measure" });
      const report = (await driver.next("result", 600_000)).result as H2LoadReport;
      control({ type: "finish" });
      load = { report, rows: await checkBookings(context, loadRange, report.total.ok) };
    }
    const result = (await watcher.next("result", 60_000)).result as NotificationDelayReport;
    const [sameLabel, otherLabel] = options.watches.map((watch) => watch.label) as [string, string];
    const otherDelays = result.delays[otherLabel] ?? [];
    const same = summarizeLatencies(result.delays[sameLabel] ?? []);
    const nats = summarizeLatencies(otherDelays);
    const calls = summarizeLatencies(result.callMs);
    const afterAnswer = summarizeLatencies(result.afterAnswerMs);
    const booked = summarizeLatencies(result.byKind.booked ?? []);
    const cancelled = summarizeLatencies(result.byKind.cancelled ?? []);
    // Every booking made by the changes must be stored once, and cancelled again.
    const stored = await context.database.query<{ rows: number; cancelled: number }>(
      `select count(*)::int as rows, (count(*) filter (where "state" = 'cancelled'))::int as cancelled ` +
        `from "consultations" where "patient_id" = $1`,
      [watched.slice("patients/".length)],
    );
    const rows = stored.rows[0] ?? { rows: 0, cancelled: 0 };
    const rowFailures = Math.abs(rows.rows - result.bookings) + Math.abs(rows.cancelled - result.bookings);
    const loadFailures = load ? load.report.total.failed + load.rows.failures : 0;
    checks.push(
      `${result.changes} changes timed (book and cancel in turn, one at a time), ${result.failed} failed; streams on both replicas caught up first`,
      `other replica (NATS): p50 ${ms(nats.p50Ms)} ms, p99 ${ms(nats.p99Ms)} ms, max ${ms(nats.maxMs)} ms; same replica: p50 ${ms(same.p50Ms)} ms, p99 ${ms(same.p99Ms)} ms`,
      `by kind (other replica): booking p50 ${ms(booked.p50Ms)} / p99 ${ms(booked.p99Ms)} ms, cancel p50 ${ms(cancelled.p50Ms)} / p99 ${ms(cancelled.p99Ms)} ms; the change calls alone: p50 ${ms(calls.p50Ms)} ms, p99 ${ms(calls.p99Ms)} ms; arrival after the call's answer (other replica): p50 ${ms(afterAnswer.p50Ms)} ms, p99 ${ms(afterAnswer.p99Ms)} ms`,
      `${rows.rows} consultations stored for the watched patient, ${rows.cancelled} cancelled (${result.bookings} booked and cancelled)`,
      ...result.problems.map((text) => `problem: ${text}`),
    );
    if (load) {
      const measured = load.report.measured;
      checks.push(
        `booking load beside it: ${measured.rps.toFixed(0)} rps, p50 ${ms(measured.p50Ms)} ms, p99 ${ms(measured.p99Ms)} ms; driver ${load.report.total.ok} ok, ${load.report.total.failed} failed; ${load.rows.check}`,
      );
    }
    const outcome: LoadResult = {
      ...nats,
      rps: result.seconds > 0 ? result.changes / result.seconds : Number.NaN,
      succeeded: result.changes,
      failed: result.failed,
      seconds: result.seconds,
    };
    return { load: outcome, failures: result.failed + rowFailures + loadFailures, checks };
  } finally {
    // The watcher and the driver first (they hold streams), then the replicas.
    for (const child of children.reverse()) await child.stop();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Issue 4's targets: BookConsultation and its raw INSERT floor, and the status-change-to-stream delay. */
export const consultationTargets: readonly BenchTarget[] = [
  {
    id: "book-consultation",
    label: "BookConsultation (CreateConsultation), distinct slots",
    via: "gRPC, bench driver",
    run: bookConsultation,
  },
  {
    id: "pg-insert-consultation",
    label: "raw pg INSERT (a booking's row)",
    via: "pg.Pool of DB_POOL_MAX, bench driver",
    run: pgInsertConsultation,
  },
  {
    id: "notification-delay",
    label: "status change -> its notification on a stream (p50/p99: delay; rps: changes/s)",
    via: "gRPC stream on another replica via NATS; changes one at a time",
    run: (context) => notificationDelay(context, false),
  },
  {
    id: "notification-delay-loaded",
    label: "status change -> its notification on a stream, beside the booking load",
    via: "as above, while the bench driver books on the changing replica",
    run: (context) => notificationDelay(context, true),
  },
];
