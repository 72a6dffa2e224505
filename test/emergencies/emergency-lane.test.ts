import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Emergency_State } from "../../gen/telemed/patient/v1/emergency_pb.js";
import { signUpPatient } from "../support/auth-fixtures.ts";
import { keysOf, startTestApp } from "../support/test-app.ts";
import { createTestDatabase } from "../support/test-database.ts";
import { assignmentOf, emergencyClient, emergencyRequest, eventually, paramedicOf } from "./emergency-fixtures.ts";
import { freePort } from "../support/free-port.ts";

const natsUrl = process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222";
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe("the outbox relay", () => {
  it("two replicas publish each emergency once, and each reaches one paramedic consumer once", {
    timeout: 60_000,
  }, async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const prefix = `t${randomBytes(5).toString("hex")}`;
    const env = { EMERGENCY_LANE_PREFIX: prefix, EMERGENCY_RELAY_INTERVAL_MS: "20" };
    const redisKeyPrefix = `patient-test:${randomBytes(8).toString("hex")}:`;
    const a = await startTestApp(env, { database, redisKeyPrefix });
    cleanups.push(() => a.close());
    const b = await startTestApp({ ...env, ...keysOf(a) }, { database, redisKeyPrefix });
    cleanups.push(() => b.close());
    const patients = await Promise.all([1, 2, 3, 4].map(() => signUpPatient(a)));
    // Each created through a different replica; both relays race over the same outbox.
    const names = await Promise.all(
      patients.flatMap((patient, i) => {
        const app = i % 2 === 0 ? a : b;
        return [emergencyClient(app, patient.interceptor).createEmergency(emergencyRequest(patient.patient))];
      }),
    );
    const ids = names.map((n) => assignmentOf(n.emergency));
    const assigned = () => [...paramedicOf(a).assignments(), ...paramedicOf(b).assignments()].map((x) => x.name);
    await eventually(() => (ids.every((id) => assigned().includes(id)) ? true : undefined), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(assigned().sort()).toEqual([...ids].sort());

    const nc = await connect({ servers: natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(`${prefix}EMERGENCY`, { subjects_filter: ">" });
      const requested = Object.entries(info.state.subjects ?? {})
        .filter(([subject]) => subject.endsWith(".requested"))
        .reduce((sum, [, count]) => sum + count, 0);
      expect(requested).toBe(ids.length);
    } finally {
      await nc.close();
    }
    // JetStream would hide a double publish (same Nats-Msg-Id): the outbox counts them.
    const pg = await import("pg");
    const client = new pg.default.Client({ connectionString: database.url });
    await client.connect();
    try {
      const rows = await client.query(`select attempts, sent_at is not null as sent from emergency_outbox`);
      expect(rows.rows).toEqual(ids.map(() => ({ attempts: 1, sent: true })));
    } finally {
      await client.end();
    }
  });
});

describe("functional safety 1: NATS down", () => {
  it("requests are still accepted, the status view says dispatch pending, and the relay drains when NATS returns", {
    timeout: 60_000,
  }, async () => {
    const port = await freePort();
    const store = await mkdtemp(join(tmpdir(), "emergency-nats-"));
    cleanups.push(() => rm(store, { recursive: true, force: true }));
    let server = await startNats(port, store);
    cleanups.push(async () => server.kill("SIGKILL"));
    const t = await startTestApp({
      NATS_URL: `nats://127.0.0.1:${port}`,
      EMERGENCY_RETRY_BASE_MS: "50",
      EMERGENCY_RETRY_MAX_MS: "200",
      EMERGENCY_PUBLISH_TIMEOUT_MS: "300",
      EMERGENCY_RELAY_INTERVAL_MS: "50",
    });
    cleanups.push(() => t.close());
    const patient = await signUpPatient(t);
    const client = emergencyClient(t, patient.interceptor);

    await stopNats(server);
    const started = Date.now();
    const { emergency } = await client.createEmergency(emergencyRequest(patient.patient));
    expect(Date.now() - started).toBeLessThan(1000); // never waits for NATS
    expect(emergency?.state).toBe(Emergency_State.DISPATCH_PENDING);
    await new Promise((resolve) => setTimeout(resolve, 800)); // several failed relay rounds
    const pending = await client.getEmergency({ name: emergency?.name ?? "" });
    expect(pending.emergency?.state).toBe(Emergency_State.DISPATCH_PENDING);
    expect(
      paramedicOf(t)
        .assignments()
        .some((a) => a.name === assignmentOf(emergency)),
    ).toBe(false);

    server = await startNats(port, store);
    const dispatched = await eventually(async () => {
      const read = await client.getEmergency({ name: emergency?.name ?? "" });
      return read.emergency?.state === Emergency_State.DISPATCHED ? read.emergency : undefined;
    }, 20_000);
    expect(dispatched.assignment?.unit).toMatch(/^units\//);
    expect(
      paramedicOf(t)
        .assignments()
        .filter((a) => a.name === assignmentOf(emergency)),
    ).toHaveLength(1);
  });
});

describe("the embedded default (no NATS_URL)", () => {
  it("runs the whole lane in process: dispatch, status events, notifications", { timeout: 30_000 }, async () => {
    const t = await startTestApp({ NATS_URL: "" });
    cleanups.push(() => t.close());
    const patient = await signUpPatient(t);
    const client = emergencyClient(t, patient.interceptor);
    const { emergency } = await client.createEmergency(emergencyRequest(patient.patient));
    await eventually(() =>
      paramedicOf(t)
        .assignments()
        .some((a) => a.name === assignmentOf(emergency))
        ? true
        : undefined,
    );
    paramedicOf(t).advance(assignmentOf(emergency));
    const enRoute = await eventually(async () => {
      const read = await client.getEmergency({ name: emergency?.name ?? "" });
      return read.emergency?.state === Emergency_State.EN_ROUTE ? read.emergency : undefined;
    });
    expect(enRoute.assignment?.callSign).not.toBe("");
  });
});

/** A nats-server of this test's own, with JetStream on a file store that survives its restarts. */
async function startNats(port: number, store: string): Promise<ChildProcess> {
  const child = spawn("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store], {
    stdio: "ignore",
  });
  await eventually(async () => {
    const nc = await connect({ servers: `nats://127.0.0.1:${port}`, timeout: 500 }).catch(() => undefined);
    if (nc === undefined) return undefined;
    await nc.close();
    return true;
  }, 10_000);
  return child;
}

async function stopNats(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}
