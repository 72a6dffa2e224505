import { fromJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { staffSession } from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

// Creates that arrive together are written in one INSERT (src/patients/patient-create-batch.ts).
// These calls go out at once on one HTTP/2 connection, as a busy client's would, and each must
// get the answer it would get alone.

let t: TestApp;
let client: Client<typeof PatientService>;
beforeAll(async () => {
  t = await startTestApp();
  // Creating profiles is an admin's task (patients sign up).
  const admin = await staffSession(t, "admin");
  client = createClient(PatientService, createGrpcTransport({ baseUrl: t.baseUrl, interceptors: [admin.interceptor] }));
});
afterAll(async () => {
  await t?.close();
});

function patientWithEmail(email = `asha.${randomUUID()}@example.com`) {
  const json = newPatientJson();
  return fromJson(PatientSchema, { ...json, contact: { ...(json.contact as object), email } } as never);
}

/** The status code of each call, `OK` for a success. */
async function codes(calls: readonly Promise<unknown>[]): Promise<string[]> {
  const settled = await Promise.allSettled(calls);
  return settled.map((result) => (result.status === "fulfilled" ? "OK" : Code[ConnectError.from(result.reason).code]));
}

describe("TST-PT002 concurrent creates", () => {
  it("TST-PT002-4 of concurrent creates with one email, exactly one is created; the others are unaffected", async () => {
    const email = `twin.${randomUUID()}@example.com`;
    const calls = [
      ...Array.from({ length: 6 }, () => client.createPatient({ patient: patientWithEmail() })),
      client.createPatient({ patient: patientWithEmail(email) }),
      client.createPatient({ patient: patientWithEmail(email.toUpperCase()) }),
    ];
    const results = await codes(calls);
    expect(results.slice(0, 6)).toEqual(Array(6).fill("OK"));
    expect([...results.slice(6)].sort()).toEqual(["AlreadyExists", "OK"]);
  });

  it("TST-PT002-3 concurrent retries with one request_id make one profile and all get it", async () => {
    const body = { patient: patientWithEmail(), requestId: randomUUID() };
    const answers = await Promise.all(Array.from({ length: 5 }, () => client.createPatient(body)));
    const names = new Set(answers.map((answer) => answer.patient?.name));
    expect(names.size).toBe(1);
    const { patient } = await client.getPatient({ name: answers[0]?.patient?.name ?? "" });
    expect(patient?.contact?.email).toBe(body.patient.contact?.email);
    expect(answers[4]?.patient?.etag).toBe(patient?.etag);
  });

  it("TST-PT002-3 a retry of a deleted profile gets NOT_FOUND while creates beside it succeed", async () => {
    const body = { patient: patientWithEmail(), requestId: randomUUID() };
    const { patient } = await client.createPatient(body);
    await client.deletePatient({ name: patient?.name ?? "" });
    const results = await codes([
      client.createPatient({ patient: patientWithEmail() }),
      client.createPatient(body),
      client.createPatient({ patient: patientWithEmail(), requestId: randomUUID() }),
    ]);
    expect(results).toEqual(["OK", "NotFound", "OK"]);
  });

  it("TST-PT002-3 a request_id reused for another email gets INVALID_ARGUMENT, once one of them is created", async () => {
    const requestId = randomUUID();
    const results = await codes([
      client.createPatient({ patient: patientWithEmail(), requestId }),
      client.createPatient({ patient: patientWithEmail(), requestId }),
    ]);
    expect([...results].sort()).toEqual(["InvalidArgument", "OK"]);
    const again = await client
      .createPatient({ patient: patientWithEmail(), requestId })
      .catch((error: unknown) => ConnectError.from(error));
    expect(again).toBeInstanceOf(ConnectError);
    expect((again as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("writes each profile's creation entry once: in its batch's statement, or after a batch that conflicted", async () => {
    // A clean batch: its entries go in the INSERT's statement.
    const clean = await Promise.all(
      Array.from({ length: 8 }, () => client.createPatient({ patient: patientWithEmail() })),
    );
    // A batch with one email twice: its statement fails as a whole, and the creates take the INSERT that skips.
    const email = `twin.${randomUUID()}@example.com`;
    const conflicted = await Promise.allSettled([
      client.createPatient({ patient: patientWithEmail(email) }),
      client.createPatient({ patient: patientWithEmail(email) }),
      client.createPatient({ patient: patientWithEmail() }),
    ]);
    expect(conflicted.map((result) => result.status).sort()).toEqual(["fulfilled", "fulfilled", "rejected"]);
    const created = [
      ...clean.map((answer) => answer.patient?.name ?? ""),
      ...conflicted.flatMap((result) => (result.status === "fulfilled" ? [result.value.patient?.name ?? ""] : [])),
    ];
    const entries = await auditedCreates(created);
    expect(entries.sort()).toEqual([...created].sort());
  });

  it("stores every one of more concurrent creates than one INSERT holds", async () => {
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => client.createPatient({ patient: patientWithEmail() })),
    );
    const names = answers.map((answer) => answer.patient?.name ?? "");
    expect(new Set(names).size).toBe(100);
    const reads = await Promise.all(names.map((name) => client.getPatient({ name })));
    expect(reads.map((read) => read.patient?.name)).toEqual(names);
    expect(reads.map((read) => read.patient?.etag)).toEqual(answers.map((answer) => answer.patient?.etag));
  });
});

/** The resources of the successful CreatePatient entries in the audit log naming `names`, one per entry. */
async function auditedCreates(names: readonly string[]): Promise<string[]> {
  const db = new pg.Client({ connectionString: t.database.url });
  await db.connect();
  try {
    const { rows } = await db.query<{ resource: string }>(
      `select "resource" from "audit_log" where "resource" = any($1) and "rpc" like '%/CreatePatient' and "outcome" = 'success'`,
      [names],
    );
    return rows.map((row) => row.resource);
  } finally {
    await db.end();
  }
}
