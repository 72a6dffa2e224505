import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { Emergency_State, EmergencySeverity } from "../../../gen/telemed/patient/v1/emergency_pb.js";
import { PatientService } from "../../../gen/telemed/patient/v1/patient_service_pb.js";
import { signUpPatient } from "../../support/auth-fixtures.ts";
import { OwnPostgres } from "../../support/own-postgres.ts";
import { startTestApp } from "../../support/test-app.ts";
import { assignmentOf, emergencyClient, emergencyRequest, eventually, paramedicOf } from "../emergency-fixtures.ts";

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe("functional safety 1: PostgreSQL down", () => {
  it("TST-PT005-1 while the database is down: an emergency is journalled, dispatched at once, and replayed into one row with its audit entry", {
    timeout: 90_000,
  }, async () => {
    const postgres = await OwnPostgres.start();
    cleanups.push(() => postgres.destroy());
    const t = await startTestApp(
      { EMERGENCY_JOURNAL_REPLAY_INTERVAL_MS: "100", DB_CONNECT_TIMEOUT_MS: "500" },
      { database: postgres.database },
    );
    cleanups.push(() => t.close());
    const patient = await signUpPatient(t);
    const client = emergencyClient(t, patient.interceptor);
    const patients = createClient(
      PatientService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
    );

    await postgres.kill();
    // Routine calls fail fast with UNAVAILABLE, not INTERNAL and not after a pool timeout.
    const routineStarted = Date.now();
    const routine = await patients.getPatient({ name: patient.patient }).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(routine?.code).toBe(Code.Unavailable);
    expect(Date.now() - routineStarted).toBeLessThan(3000);

    const requestId = randomUUID();
    const started = Date.now();
    const { emergency } = await client.createEmergency(emergencyRequest(patient.patient, {}, requestId));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(emergency?.state).toBe(Emergency_State.DISPATCH_PENDING);
    expect(emergency?.name).toMatch(new RegExp(`^${patient.patient}/emergencies/`));
    expect((await readdir(join(t.dataDir, "emergency-journal"))).some((f) => f.endsWith(".log"))).toBe(true);

    // A retry with the same request id is the same emergency; NATS is up, so the paramedics have it already.
    const again = await client.createEmergency(emergencyRequest(patient.patient, {}, requestId));
    expect(again.emergency?.name).toBe(emergency?.name);
    await eventually(
      () =>
        paramedicOf(t)
          .assignments()
          .some((a) => a.name === assignmentOf(emergency))
          ? true
          : undefined,
      10_000,
    );

    await postgres.restart();
    const replayed = await eventually(async () => {
      const read = await client.getEmergency({ name: emergency?.name ?? "" }).catch(() => undefined);
      return read?.emergency !== undefined && read.emergency.state >= Emergency_State.REQUESTED
        ? read.emergency
        : undefined;
    }, 20_000);
    expect(replayed.name).toBe(emergency?.name);
    const third = await client.createEmergency(emergencyRequest(patient.patient, {}, requestId));
    expect(third.emergency?.name).toBe(emergency?.name);

    const id = emergency?.name.split("/").at(-1) ?? "";
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      const rows = await db.query(`select count(*)::int as n from emergencies where patient_id = $1`, [
        patient.patientId,
      ]);
      expect(rows.rows[0].n).toBe(1);
      const outbox = await db.query(
        `select attempts, sent_at is not null as sent from emergency_outbox where emergency_id = $1`,
        [id],
      );
      expect(outbox.rows).toEqual([{ attempts: 1, sent: true }]); // published by the journal path, not again by the relay
      const audit = await db.query(`select action, rpc from audit_log where resource = $1 order by sequence`, [
        emergency?.name,
      ]);
      expect(audit.rows.map((row) => row.action)).toContain("create");
      expect(
        paramedicOf(t)
          .assignments()
          .filter((a) => a.name === assignmentOf(emergency)),
      ).toHaveLength(1);
    } finally {
      await db.end();
    }
  });
});

describe("functional safety 1: a retry during an outage", () => {
  it("of a request committed before a restart gets that emergency, not a second one from the journal", {
    timeout: 90_000,
  }, async () => {
    const postgres = await OwnPostgres.start();
    cleanups.push(() => postgres.destroy());
    const dataDir = await mkdtemp(join(tmpdir(), "patient-test-app-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = { EMERGENCY_JOURNAL_REPLAY_INTERVAL_MS: "100", EMERGENCY_MERGE_WINDOW_SECONDS: "0" };
    const first = await startTestApp(env, { database: postgres.database, dataDir });
    cleanups.push(() => first.close());
    const patient = await signUpPatient(first);
    const requestId = randomUUID();
    const committed = await emergencyClient(first, patient.interceptor).createEmergency(
      emergencyRequest(patient.patient, {}, requestId),
    );
    // The answer "was lost": the process goes, another one starts on the same data.
    await first.app.stop();
    const second = await startTestApp(env, { database: postgres.database, dataDir });
    cleanups.push(() => second.close());
    const client = emergencyClient(second, patient.interceptor);

    await postgres.kill();
    const retried = await client.createEmergency(emergencyRequest(patient.patient, {}, requestId));
    expect(retried.emergency?.name).toBe(committed.emergency?.name);
    const other = await client.createEmergency(
      emergencyRequest(patient.patient, { severity: EmergencySeverity.CRITICAL }, randomUUID()),
    );
    expect(other.emergency?.state).toBe(Emergency_State.DISPATCH_PENDING);
    expect(other.emergency?.name).not.toBe(committed.emergency?.name);

    await postgres.restart();
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      const count = async () =>
        (await db.query(`select count(*)::int as n from emergencies where patient_id = $1`, [patient.patientId]))
          .rows[0].n as number;
      await eventually(async () => ((await count()) === 2 ? true : undefined), 20_000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // a second replay would show by now
      expect(await count()).toBe(2);
    } finally {
      await db.end();
    }
  });
});
