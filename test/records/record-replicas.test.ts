import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/telemed/patient/v1/audit_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { keysOf, startTestApp, type TestApp } from "../support/test-app.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { allergy, recordTestEnv, records } from "./record-fixtures.ts";

/**
 * Two replicas on one database, creating records at once. Each writes a group of
 * creates in one statement that moves the audit chain's head from where its process
 * last saw it: the other replica keeps moving it, so statements abort and are retried,
 * and groups fall back to the locking transaction. None of that may lose a record,
 * number a change twice or break the chain.
 */
let database: TestDatabase;
let a: TestApp;
let b: TestApp;
let admin: TestSession;

beforeAll(async () => {
  database = await createTestDatabase();
  const redisKeyPrefix = `patient-test:${randomUUID()}:`;
  a = await startTestApp(recordTestEnv, { database, redisKeyPrefix });
  b = await startTestApp({ ...recordTestEnv, ...keysOf(a) }, { database, redisKeyPrefix });
  admin = await staffSession(a, "admin");
}, 60_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
  await database?.drop();
});

describe("concurrent creates on two replicas", () => {
  it("stores every record once, with one feed entry and one audit entry each, and the chain stays intact", async () => {
    const patients = await Promise.all([signUpPatient(a), signUpPatient(b)]);
    const onA = records(a, admin);
    const onB = records(b, admin);
    const names: string[] = [];
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(
        Array.from({ length: 48 }, (_, i) =>
          (i % 2 === 0 ? onA : onB).createRecord({
            parent: (patients[i % 3 === 0 ? 1 : 0] as TestSession).patient,
            record: allergy(`Substance ${round}-${i}`),
            requestId: randomUUID(),
          }),
        ),
      );
      names.push(...answers.map((answer) => answer.record?.name ?? ""));
    }
    expect(new Set(names).size).toBe(144);
    for (const patient of patients) {
      const own = names.filter((name) => name.startsWith(`${patient.patient}/records/`)).sort();
      const history = await onB.listRecords({ parent: patient.patient, pageSize: 100 });
      expect(history.records.map((r) => r.name).sort()).toEqual(own);
      // The change feed numbers each creation once, 1..n with no gap.
      const feed = await onA.pullRecordChanges({ parent: patient.patient, pageSize: 100 });
      expect(feed.changes.map((c) => c.record?.name).sort()).toEqual(own);
      const events = await createClient(
        AuditService,
        createConnectTransport({ baseUrl: a.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
      ).listAccessEvents({ parent: patient.patient, pageSize: 200, includeOwn: true });
      const created = events.accessEvents.filter(
        (e) => e.action === AuditAction.CREATE && e.resource.startsWith(`${patient.patient}/records/`),
      );
      expect(created.map((e) => e.resource).sort()).toEqual(own);
    }
    const verified = await createClient(
      AuditService,
      createConnectTransport({ baseUrl: b.baseUrl, httpVersion: "1.1", interceptors: [admin.interceptor] }),
    ).verifyAuditChain({});
    expect(verified.verification?.intact).toBe(true);
  }, 60_000);
});
