import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { EmergencySeverity } from "../../../gen/telemed/patient/v1/emergency_pb.js";
import { EmergencyService } from "../../../gen/telemed/patient/v1/emergency_service_pb.js";
import { type EmergencyLane, keyOfMsgId } from "../../../src/emergencies/lane/emergency-lane.ts";
import { JetStreamLane } from "../../../src/emergencies/lane/jetstream-lane.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { startParamedicDispatch } from "../../../src/simulators/paramedic-dispatch.ts";
import { type RunningSimulators, startSimulators } from "../../../src/simulators/start-simulators.ts";
import { signUpPatient, type TestSession } from "../../support/auth-fixtures.ts";
import { OwnPostgres } from "../../support/own-postgres.ts";
import type { TestApp } from "../../support/test-app.ts";
import { emergencyRequest } from "../emergency-fixtures.ts";
import { freePort, NatsChild, ServiceChild, sleep } from "./fault-children.ts";

/**
 * Functional safety 1 under fault injection: 1000 emergencies from many patients,
 * each retried with its own request id until answered (as a real client does), while
 * NATS, PostgreSQL and the Patient Service itself are each killed with SIGKILL and
 * started again, with requests in flight. Everything runs in processes of this test's
 * own: a nats-server, an embedded PostgreSQL, the service (`node src/main.ts`), and
 * here the sibling simulators and a Paramedic Service consumer on the child NATS.
 */

const patientCount = Number(process.env.FAULT_PATIENTS ?? 25);
const perPatient = Number(process.env.FAULT_EMERGENCIES_PER_PATIENT ?? 40);
const repositoryRoot = fileURLToPath(new URL("../../../", import.meta.url));
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe("functional safety 1: fault injection", () => {
  it("TST-PT005-1 under SIGKILLs of NATS, PostgreSQL and the service: every acknowledged emergency is stored, audited and dispatched once", {
    timeout: 240_000,
  }, async () => {
    const work = await mkdtemp(join(tmpdir(), "emergency-fault-"));
    // FAULT_KEEP=1 keeps the folder (the service's log, the journal) for a look afterwards.
    if (process.env.FAULT_KEEP === undefined) cleanups.push(() => rm(work, { recursive: true, force: true }));
    else process.stdout.write(`fault injection work folder: ${work}\n`);
    const nats = new NatsChild(await freePort(), join(work, "nats"));
    await nats.start();
    cleanups.push(() => nats.kill());
    const postgres = await OwnPostgres.start();
    cleanups.push(() => postgres.destroy());
    const simulators: RunningSimulators = await startSimulators();
    cleanups.push(() => simulators.stop(0));

    const prefix = `f${randomBytes(5).toString("hex")}`;
    const dataDir = join(work, "service");
    const service = new ServiceChild(
      await freePort(),
      {
        DATA_DIR: dataDir,
        DATABASE_URL: postgres.url,
        NATS_URL: nats.url,
        REDIS_URL: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
        REDIS_KEY_PREFIX: `fault-test:${randomUUID()}:`,
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        SHUTDOWN_GRACE_MS: "1000",
        DOCTOR_SERVICE_URL: simulators.url,
        PARAMEDIC_SERVICE_URL: simulators.url,
        XRAY_SERVICE_URL: simulators.url,
        NOTIFICATION_SERVICE_URL: simulators.url,
        // Every sibling has a URL (SIMULATORS=off): billing's UPI simulator needs the explicit opt-in.
        PAYMENT_SIMULATOR: "embedded",
        EMERGENCY_LANE_PREFIX: prefix,
        EMERGENCY_MERGE_WINDOW_SECONDS: "0",
        EMERGENCY_RELAY_INTERVAL_MS: "100",
        EMERGENCY_RETRY_BASE_MS: "50",
        EMERGENCY_RETRY_MAX_MS: "500",
        EMERGENCY_PUBLISH_TIMEOUT_MS: "500",
        EMERGENCY_JOURNAL_REPLAY_INTERVAL_MS: "200",
        DB_CONNECT_TIMEOUT_MS: "3000",
      },
      join(work, "service.log"),
    );
    cleanups.push(() => service.stop());
    await service.start();

    // The Paramedic Service: its own connection and durable consumer on the child NATS, counting deliveries.
    const deliveries = new Map<string, number>();
    const paramedicLane = await JetStreamLane.open(
      {
        url: nats.url,
        name: "fault-paramedic",
        prefix,
        publishTimeoutMs: 1000,
        replicas: 1,
        duplicateWindowSeconds: 3600,
      },
      createLogger("silent"),
    );
    cleanups.push(() => paramedicLane.close());
    const dispatch = await startParamedicDispatch(
      simulators.paramedic,
      countingDispatch(paramedicLane, deliveries),
      createLogger("silent"),
      { retryBaseMs: 50 },
    );
    cleanups.push(() => dispatch.stop());

    const app = { baseUrl: service.baseUrl, app: { siblings: { simulators } } } as unknown as TestApp;
    const patients: TestSession[] = [];
    for (let i = 0; i < patientCount; i += 5) {
      const batch = [0, 1, 2, 3, 4].slice(0, patientCount - i).map(() => signUpPatient(app));
      patients.push(
        ...(await Promise.all(batch).catch(async (error: unknown) => {
          throw new Error(`sign-up failed: ${String(error)}\n${await service.tail()}`);
        })),
      );
    }

    // The load: one client per patient, requests one after another, each retried with its request id until answered.
    const answers = new Map<string, Set<string>>();
    const samples = new Map<string, number>();
    const loadStarted = Date.now();
    const send = async (patient: TestSession, client: Client<typeof EmergencyService>, n: number) => {
      const requestId = randomUUID();
      const severity = [EmergencySeverity.CRITICAL, EmergencySeverity.SERIOUS, EmergencySeverity.URGENT][n % 3];
      const request = emergencyRequest(patient.patient, { severity }, requestId);
      for (let attempt = 1; ; attempt += 1) {
        try {
          const { emergency } = await client.createEmergency(request, { timeoutMs: 5000 });
          const seen = answers.get(requestId) ?? new Set<string>();
          seen.add(emergency?.name ?? "");
          answers.set(requestId, seen);
          return;
        } catch (error) {
          const connectError = ConnectError.from(error);
          const code = Code[connectError.code] ?? "?";
          const sample = `${code}: ${connectError.rawMessage.replace(/\d+/g, "N").slice(0, 100)}`;
          samples.set(sample, (samples.get(sample) ?? 0) + 1);
          if (Date.now() - loadStarted > 150_000) throw ConnectError.from(error);
          await sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
        }
      }
    };
    const load = Promise.all(
      patients.map(async (patient) => {
        const client = createClient(
          EmergencyService,
          createConnectTransport({ baseUrl: service.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
        );
        for (let n = 0; n < perPatient; n += 1) {
          await send(patient, client, n);
          await sleep(400 + Math.random() * 400);
        }
      }),
    );

    // The faults, while the load runs: each at least once, with requests in flight.
    const faults: string[] = [];
    const at = async (second: number, what: string, action: () => Promise<void>) => {
      await sleep(Math.max(0, loadStarted + second * 1000 - Date.now()));
      await action();
      faults.push(`${((Date.now() - loadStarted) / 1000).toFixed(1)}s ${what}`);
    };
    await at(3, "SIGKILL nats", () => nats.kill());
    await at(6, "nats started", () => nats.start());
    await at(9, "SIGKILL postgres", () => postgres.kill());
    await at(14, "postgres started", () => postgres.restart());
    await at(17, "SIGKILL service", () => service.kill());
    await at(17.5, "service started", () => service.start());
    await at(21, "SIGKILL postgres", () => postgres.kill());
    await at(23, "SIGKILL service (postgres down, journal pending)", async () => {
      await journalHolds(join(dataDir, "emergency-journal"), 10_000);
      await service.kill();
    });
    await at(25, "postgres started", () => postgres.restart());
    await at(25.1, "service started", () => service.start());
    await at(28, "SIGKILL nats and service", async () => {
      await Promise.all([nats.kill(), service.kill()]);
    });
    await at(29, "nats started", () => nats.start());
    await at(29.1, "service started", () => service.start());
    await load.catch(async (error: unknown) => {
      throw new Error(`the load did not finish: ${String(error)}\n${await service.tail()}`);
    });

    const acknowledged = new Map<string, string>();
    for (const [requestId, names] of answers) {
      expect(names.size, `request ${requestId} got different emergencies`).toBe(1);
      acknowledged.set(requestId, [...names][0] as string);
    }
    const ids = new Set([...acknowledged.values()].map((name) => name.split("/").at(-1) as string));
    expect(acknowledged.size).toBe(patientCount * perPatient);
    expect(ids.size).toBe(acknowledged.size);

    // Quiescence: every acknowledged emergency in the table, sent, and at the paramedics.
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    cleanups.push(() => db.end());
    const settled = async () => {
      const rows = await db.query(`select id from emergencies`);
      const unsent = await db.query(`select count(*)::int as n from emergency_outbox where sent_at is null`);
      return rows.rows.length >= ids.size && unsent.rows[0].n === 0 && [...ids].every((id) => deliveries.has(id));
    };
    const deadline = Date.now() + 60_000;
    while (!(await settled().catch(() => false)) && Date.now() < deadline) await sleep(500);

    const rows = (await db.query(`select id from emergencies`)).rows.map((row) => row.id as string);
    const requests = await db.query(`select request_id, emergency_id from emergency_requests`);
    const outbox = await db.query(
      `select count(*)::int as n, count(*) filter (where sent_at is null)::int as unsent from emergency_outbox where topic = 'requested'`,
    );
    const audited = await db.query(
      `select count(*)::int as entries, count(distinct resource)::int as emergencies from audit_log where action = 'create' and resource like 'patients/%/emergencies/%'`,
    );
    const delivered = [...deliveries.values()].reduce((sum, count) => sum + count, 0);
    const assignments = simulators.paramedic.assignments();
    const stored = await requestedOnStream(nats.url, prefix);
    const verify = await auditVerify(postgres.url, join(dataDir, "keys", "audit-signing-key.pem"));
    const summary = {
      acknowledged: acknowledged.size,
      failedAttemptsRetried: Object.fromEntries(samples),
      journalled: logLines(await service.log(), "into the local journal").length,
      journalPendingAtStarts: logLines(await service.log(), "accepted without the database").reduce(
        (sum, line) => sum + Number(/"pending":(\d+)/.exec(line)?.[1] ?? 0),
        0,
      ),
      rows: rows.length,
      requestIds: requests.rows.length,
      outboxRows: outbox.rows[0].n,
      auditCreateEntries: audited.rows[0].entries,
      auditedEmergencies: audited.rows[0].emergencies,
      dispatchedDistinct: deliveries.size,
      deliveries: delivered,
      redeliveries: delivered - deliveries.size,
      assignments: assignments.length,
      requestedMessagesOnStream: stored,
      serviceStarts: service.starts,
      auditVerify: verify.line,
    };
    process.stdout.write(`\nfault injection:\n  ${faults.join("\n  ")}\n${JSON.stringify(summary, null, 2)}\n`);

    expect(new Set(rows)).toEqual(ids); // every acknowledged emergency, and nothing else
    expect(new Map(requests.rows.map((row) => [row.request_id, row.emergency_id]))).toEqual(
      new Map([...acknowledged].map(([requestId, name]) => [requestId, name.split("/").at(-1)])),
    );
    expect(outbox.rows[0]).toEqual({ n: ids.size, unsent: 0 });
    expect(audited.rows[0].emergencies).toBe(ids.size);
    expect(new Set(deliveries.keys())).toEqual(ids);
    expect(new Set(assignments.map((a) => a.name.slice("assignments/".length)))).toEqual(ids);
    expect(stored).toBe(ids.size); // no dispatch message stored twice
    expect(verify.code, verify.line).toBe(0);
    // Failed attempts were the service being down (no connection, or one cut by the SIGKILL), never an answer.
    const answeredErrors = [...samples.keys()].filter((sample) => !transportFailure.test(sample));
    expect(answeredErrors).toEqual([]);
    expect(summary.journalled).toBeGreaterThan(0); // PostgreSQL was down under load: the journal took emergencies
    expect(summary.journalPendingAtStarts).toBeGreaterThan(0); // and a killed service found them on restart
  });
});

/** A call that never reached a running service, or whose connection the SIGKILL cut. */
const transportFailure = /ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|other side closed/;

function logLines(log: string, text: string): string[] {
  return log.split("\n").filter((line) => line.includes(text));
}

/** Waits until the journal folder holds a written entry (so a kill now leaves pending ones behind). */
async function journalHolds(dir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith(".log"))) {
      if ((await stat(join(dir, name)).catch(() => undefined))?.size) return;
    }
    await sleep(50);
  }
  throw new Error("nothing was journalled while PostgreSQL was down");
}

/** The lane, with every dispatch request a consumer receives counted by emergency id. */
function countingDispatch(lane: EmergencyLane, deliveries: Map<string, number>): EmergencyLane {
  return {
    kind: lane.kind,
    publish: (topic, priority, msgId, data) => lane.publish(topic, priority, msgId, data),
    consume: (options) =>
      lane.consume({
        ...options,
        handler: async (delivery) => {
          if (delivery.topic === "requested") {
            const id = keyOfMsgId(delivery.msgId);
            deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
          }
          await options.handler(delivery);
        },
      }),
    close: () => lane.close(),
  };
}

/** Messages stored on the `.requested` subjects of the stream. */
async function requestedOnStream(url: string, prefix: string): Promise<number> {
  const nc = await connect({ servers: url, timeout: 5000 });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(`${prefix}EMERGENCY`, { subjects_filter: ">" });
    return Object.entries(info.state.subjects ?? {})
      .filter(([subject]) => subject.endsWith(".requested"))
      .reduce((sum, [, count]) => sum + count, 0);
  } finally {
    await nc.close();
  }
}

/** `npm run audit:verify` against the test's database: its exit code and line. */
async function auditVerify(databaseUrl: string, keyFile: string): Promise<{ code: number | null; line: string }> {
  const child = spawn(process.execPath, ["scripts/audit-verify.ts"], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: databaseUrl, AUDIT_SIGNING_KEY_FILE: keyFile },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += String(chunk);
  });
  child.stderr.on("data", (chunk) => {
    output += String(chunk);
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, line: output.trim() };
}
