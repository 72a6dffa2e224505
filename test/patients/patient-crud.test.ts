import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { fromJson } from "@bufbuild/protobuf";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";

let t: TestApp;
/**
 * CreatePatient and ListPatients are for admins (patients come in through
 * AuthService.SignUp), so the whole lifecycle runs as an admin, who may also read,
 * change and delete any profile. Owners' access is test/patients/patient-access.test.ts's.
 */
let admin: TestSession;
beforeAll(async () => {
  t = await startTestApp();
  admin = await staffSession(t, "admin");
});
afterAll(async () => {
  await t?.close();
});

/** A typed client over each protocol a caller may use, authenticated as the admin. */
function clients(): Record<string, Client<typeof PatientService>> {
  const interceptors = [admin.interceptor];
  return {
    "Connect binary over HTTP/2": createClient(
      PatientService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors }),
    ),
    "Connect JSON over HTTP/1.1": createClient(
      PatientService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors }),
    ),
    "gRPC over h2c": createClient(PatientService, createGrpcTransport({ baseUrl: t.baseUrl, interceptors })),
    "gRPC-Web over HTTP/1.1 (browser transport)": createClient(
      PatientService,
      createGrpcWebTransport({ baseUrl: t.baseUrl, interceptors }),
    ),
  };
}

function patientInit(overrides: Record<string, unknown> = {}) {
  return fromJson(PatientSchema, newPatientJson(overrides) as never);
}

describe("TST-PT002: patient profile CRUD over every protocol", () => {
  it.each([
    "Connect binary over HTTP/2",
    "Connect JSON over HTTP/1.1",
    "gRPC over h2c",
    "gRPC-Web over HTTP/1.1 (browser transport)",
  ])("TST-PT002-1 create, read, update with a field mask, delete: %s", async (protocol) => {
    const client = clients()[protocol] as Client<typeof PatientService>;
    const { patient: created } = await client.createPatient({ patient: patientInit(), requestId: randomUUID() });
    expect(created?.name).toMatch(/^patients\/[0-9a-f-]{36}$/);
    expect(created?.etag).not.toBe("");
    expect(created?.createTime).toBeDefined();

    const { patient: read } = await client.getPatient({ name: created!.name });
    expect(read?.legalName?.givenName).toBe("Asha");
    expect(read?.contact?.email).toBe(created?.contact?.email);
    expect(read?.insurance?.policyNumber).toBe("P-123");

    const { patient: updated } = await client.updatePatient({
      patient: { name: created!.name, etag: read!.etag, contact: { phone: "+919700000000" }, upiId: "asha.new@okhdfc" },
      updateMask: { paths: ["contact.phone", "upi_id"] },
    });
    expect(updated?.contact?.phone).toBe("+919700000000");
    expect(updated?.contact?.email).toBe(created?.contact?.email);
    expect(updated?.upiId).toBe("asha.new@okhdfc");
    expect(updated?.etag).not.toBe(read?.etag);

    await client.deletePatient({ name: created!.name });
    const gone = await client.getPatient({ name: created!.name }).catch((e: unknown) => e);
    expect(ConnectError.from(gone).code).toBe(Code.NotFound);
  });

  it("TST-PT002-2 a stale etag is refused with ABORTED and changes nothing", async () => {
    const client = clients()["gRPC over h2c"] as Client<typeof PatientService>;
    const { patient } = await client.createPatient({ patient: patientInit() });
    await client.updatePatient({
      patient: { name: patient!.name, etag: patient!.etag, upiId: "first@okaxis" },
      updateMask: { paths: ["upi_id"] },
    });
    const stale = await client
      .updatePatient({
        patient: { name: patient!.name, etag: patient!.etag, upiId: "second@okaxis" },
        updateMask: { paths: ["upi_id"] },
      })
      .catch((e: unknown) => ConnectError.from(e));
    expect((stale as ConnectError).code).toBe(Code.Aborted);
    const { patient: now } = await client.getPatient({ name: patient!.name });
    expect(now?.upiId).toBe("first@okaxis");
  });

  it("TST-PT002-3 a retried create with the same request_id returns the first profile", async () => {
    const client = clients()["Connect JSON over HTTP/1.1"] as Client<typeof PatientService>;
    const requestId = randomUUID();
    const body = { patient: patientInit(), requestId };
    const [a, b] = await Promise.all([client.createPatient(body), client.createPatient(body)]);
    expect(a.patient?.name).toBe(b.patient?.name);
    const again = await client.createPatient(body);
    expect(again.patient?.name).toBe(a.patient?.name);
  });

  it("TST-PT002-4 email is unique, case-insensitively: ALREADY_EXISTS without echoing it", async () => {
    const client = clients()["gRPC over h2c"] as Client<typeof PatientService>;
    const { patient } = await client.createPatient({ patient: patientInit() });
    const email = patient!.contact!.email;
    const error = await client
      .createPatient({ patient: patientInit({ contact: { email: email.toUpperCase() } }) })
      .catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.AlreadyExists);
    expect((error as ConnectError).rawMessage).not.toContain(email);
  });

  it("TST-PT002-5 an update cannot clear a required field or write an output-only one", async () => {
    const client = clients()["Connect binary over HTTP/2"] as Client<typeof PatientService>;
    const { patient } = await client.createPatient({ patient: patientInit() });
    const cleared = await client
      .updatePatient({ patient: { name: patient!.name }, updateMask: { paths: ["contact.email"] } })
      .catch((e: unknown) => ConnectError.from(e));
    expect((cleared as ConnectError).code).toBe(Code.InvalidArgument);
    expect((cleared as ConnectError).rawMessage).toMatch(/invalid/i);
    const outputOnly = await client
      .updatePatient({ patient: { name: patient!.name, etag: "v99" }, updateMask: { paths: ["create_time"] } })
      .catch((e: unknown) => ConnectError.from(e));
    expect((outputOnly as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("TST-PT002-6 lists with page tokens, newest first, without repeats", async () => {
    const client = clients()["Connect JSON over HTTP/1.1"] as Client<typeof PatientService>;
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await client.createPatient({ patient: patientInit() })).patient!.name);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listPatients({ pageSize: 2, pageToken });
      expect(page.patients.length).toBeLessThanOrEqual(2);
      seen.push(...page.patients.map((p) => p.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(new Set(seen).size).toBe(seen.length);
    const order = created.map((name) => seen.indexOf(name));
    expect(order.every((index) => index >= 0)).toBe(true);
    expect([...order].sort((x, y) => y - x)).toEqual(order);
    const bogus = await client.listPatients({ pageToken: "not-a-token" }).catch((e: unknown) => ConnectError.from(e));
    expect((bogus as ConnectError).code).toBe(Code.InvalidArgument);
  });
});
