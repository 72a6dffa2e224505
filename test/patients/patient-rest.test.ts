import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

const run = promisify(execFile);
let t: TestApp;
/** POST and GET /patients are admin-only; the admin, who may act on any profile, makes every call here. */
let admin: TestSession;
beforeAll(async () => {
  t = await startTestApp();
  admin = await staffSession(t, "admin");
});
afterAll(async () => {
  await t?.close();
});

async function rest(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, any> }> {
  const response = await fetch(`${t.baseUrl}${path}`, {
    method,
    headers: body === undefined ? admin.headers : { ...admin.headers, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, any> };
}

describe("TST-PT002 the seed's REST table, transcoded from the gRPC contract", () => {
  it("POST /patients, GET /patients/{id}, PUT /patients/{id}, DELETE /patients/{id}", async () => {
    const created = await rest("POST", "/patients", newPatientJson());
    expect(created.status).toBe(200);
    const name = created.json.name as string;
    expect(name).toMatch(/^patients\//);
    expect(created.json.legalName.givenName).toBe("Asha");

    const read = await rest("GET", `/${name}`);
    expect(read.status).toBe(200);
    expect(read.json.contact.email).toBe(created.json.contact.email);

    // A PUT body without update_mask changes exactly the fields it carries.
    const updated = await rest("PUT", `/${name}`, { contact: { phone: "+14155550100" }, etag: read.json.etag });
    expect(updated.status).toBe(200);
    expect(updated.json.contact.phone).toBe("+14155550100");
    expect(updated.json.contact.email).toBe(created.json.contact.email);
    expect(updated.json.upiId).toBe(created.json.upiId);

    const stale = await rest("PUT", `/${name}`, { upiId: "asha.x@okaxis", etag: read.json.etag });
    expect(stale.status).toBe(409);
    expect(stale.json.error.status).toBe("ABORTED");

    const deleted = await rest("DELETE", `/${name}`);
    expect(deleted.status).toBe(200);
    const gone = await rest("GET", `/${name}`);
    expect(gone.status).toBe(404);
    expect(gone.json.error.status).toBe("NOT_FOUND");
    expect(gone.json.error.details[0]["@type"]).toBe("type.googleapis.com/google.rpc.ErrorInfo");
  });

  it("GET /patients pages with page_size and page_token", async () => {
    for (let i = 0; i < 3; i++) expect((await rest("POST", "/patients", newPatientJson())).status).toBe(200);
    const first = await rest("GET", "/patients?page_size=2");
    expect(first.json.patients).toHaveLength(2);
    const second = await rest(
      "GET",
      `/patients?page_size=2&page_token=${encodeURIComponent(first.json.nextPageToken)}`,
    );
    expect(second.json.patients.length).toBeGreaterThan(0);
    expect(second.json.patients[0].name).not.toBe(first.json.patients[1].name);
  });

  it("the other services' routes are served from the same contract (billing, issue #7)", async () => {
    const created = await rest("POST", "/patients", newPatientJson());
    const invoices = await rest("GET", `/${created.json.name}/invoices`);
    expect(invoices.status).toBe(200);
    expect(invoices.json).toEqual({}); // no invoice yet: proto3 JSON omits empty fields
  });
});

describe("buf curl through server reflection (no local schema)", () => {
  it("lists every service and calls GetPatient over gRPC", async () => {
    const created = await rest("POST", "/patients", newPatientJson());
    const buf = "node_modules/.bin/buf";
    const services = await run(buf, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--list-services",
      t.baseUrl,
    ]);
    expect(services.stdout).toContain("telemed.patient.v1.PatientService");
    expect(services.stdout).toContain("grpc.health.v1.Health");
    const call = await run(buf, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "-H",
      `Authorization: Bearer ${admin.accessToken}`,
      "-d",
      JSON.stringify({ name: created.json.name }),
      `${t.baseUrl}/telemed.patient.v1.PatientService/GetPatient`,
    ]);
    expect(JSON.parse(call.stdout).patient.name).toBe(created.json.name);
  });
});
