import { mkdtemp, rm } from "node:fs/promises";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatientSchema } from "../../../gen/telemed/patient/v1/patient_pb.js";
import { GetPatientRequestSchema, PatientService } from "../../../gen/telemed/patient/v1/patient_service_pb.js";
import { staffSession, type TestSession } from "../../support/auth-fixtures.ts";
import { newPatientJson } from "../../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../../support/test-app.ts";
import { selfSignedCertificate } from "../../support/test-certificate.ts";

describe("observability: /metrics and logs", () => {
  let t: TestApp;
  /** CreatePatient is admin-only; an admin may also read any profile. */
  let admin: TestSession;
  const logs: string[] = [];
  beforeAll(async () => {
    const sink = new PassThrough();
    sink.on("data", (chunk: Buffer) => logs.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
    t = await startTestApp({ LOG_LEVEL: "debug" }, { logs: sink });
    admin = await staffSession(t, "admin");
  });
  afterAll(async () => {
    await t?.close();
  });

  it("counts every RPC by method, protocol and code, with a latency histogram", async () => {
    const created = await fetch(`${t.baseUrl}/patients`, {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: JSON.stringify(newPatientJson()),
    });
    expect(created.status).toBe(200);
    await fetch(`${t.baseUrl}/patients/nobody`, { headers: admin.headers });
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/rpc_server_handled_total\{method="CreatePatient",code="ok",protocol="rest"\} 1/);
    expect(metrics).toMatch(/rpc_server_handled_total\{method="GetPatient",code="NotFound",protocol="rest"\} 1/);
    expect(metrics).toMatch(/rpc_server_handling_seconds_bucket\{le="0.005",method="CreatePatient",protocol="rest"\}/);
    expect(metrics).toContain("process_cpu_seconds_total");
  });

  it("logs request ids and never the profile's health data or contact details", async () => {
    const patient = newPatientJson();
    const email = (patient.contact as { email: string }).email;
    const response = await fetch(`${t.baseUrl}/patients`, {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json", "x-request-id": "req-log-check-1" },
      body: JSON.stringify(patient),
    });
    expect(response.headers.get("x-request-id")).toBe("req-log-check-1");
    const duplicate = await fetch(`${t.baseUrl}/patients`, {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json", "x-request-id": "req-log-check-2" },
      body: JSON.stringify(patient),
    });
    expect(duplicate.status).toBe(409);
    const text = logs.join("\n");
    expect(text).toContain("req-log-check-1");
    expect(text).toContain("req-log-check-2");
    for (const secret of [email, "Asha", "Rao", "+919812345678", "asha.rao@okaxis", "P-123", "MG Road"]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe("graceful shutdown", () => {
  it("lets calls in flight finish, then refuses new connections", async () => {
    const t = await startTestApp();
    const admin = await staffSession(t, "admin");
    const client = createClient(
      PatientService,
      createGrpcTransport({ baseUrl: t.baseUrl, interceptors: [admin.interceptor] }),
    );
    const { patient } = await client.createPatient({ patient: fromJson(PatientSchema, newPatientJson() as never) });
    // Block reads of the table so the calls are provably inside the server when shutdown starts.
    const blocker = new pg.Client({ connectionString: t.database.url });
    await blocker.connect();
    await blocker.query("begin; lock table patients in access exclusive mode");
    const inFlight = Promise.all(Array.from({ length: 8 }, () => client.getPatient({ name: patient!.name })));
    // Concurrent reads share one query, so one waiting lock means the calls are inside;
    // a short pause lets any straggler join the queue behind it.
    await waitFor(async () => {
      const { rows } = await blocker.query("select count(*)::int as n from pg_locks where not granted");
      return rows[0].n >= 1;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const stopping = t.app.stop();
    setTimeout(() => void blocker.query("commit"), 300);
    const results = await inFlight;
    expect(results.every((r) => r.patient?.name === patient!.name)).toBe(true);
    await stopping;
    await blocker.end();
    await expect(fetch(`${t.baseUrl}/healthz`)).rejects.toThrow();
    await t.database.drop();
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("TLS", () => {
  let dir: string;
  let t: TestApp;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "patient-tls-"));
    await selfSignedCertificate(dir);
    t = await startTestApp({ TLS_CERT_FILE: join(dir, "cert.pem"), TLS_KEY_FILE: join(dir, "key.pem") });
  });
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves HTTP/2 by ALPN and HTTP/1.1 on the same TLS port", async () => {
    const { readFile } = await import("node:fs/promises");
    const ca = await readFile(join(dir, "cert.pem"));
    const session = http2.connect(`https://127.0.0.1:${t.app.port}`, { ca });
    const status = await new Promise<{ status: number; alpn: string | false | undefined }>((resolve, reject) => {
      const stream = session.request({ ":path": "/healthz" });
      stream.on("response", (headers) => resolve({ status: Number(headers[":status"]), alpn: session.alpnProtocol }));
      stream.on("error", reject);
      stream.end();
    });
    session.close();
    expect(status).toEqual({ status: 200, alpn: "h2" });
    const https = await import("node:https");
    const h1Status = await new Promise<number>((resolve, reject) => {
      https
        .get({ host: "127.0.0.1", port: t.app.port, path: "/healthz", ca, servername: "localhost" }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on("error", reject);
    });
    expect(h1Status).toBe(200);
  });

  it("refuses cleartext on a TLS port", async () => {
    await expect(fetch(`http://127.0.0.1:${t.app.port}/healthz`)).rejects.toThrow();
  });
});

describe("CORS for browsers (gRPC-Web, Connect, REST)", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ CORS_ALLOWED_ORIGINS: "https://app.example.com" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("answers the preflight of an allowed origin and nothing for others", async () => {
    const preflight = (origin: string) =>
      fetch(`${t.baseUrl}/telemed.patient.v1.PatientService/GetPatient`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,x-grpc-web",
        },
      });
    const allowed = await preflight("https://app.example.com");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(allowed.headers.get("access-control-allow-headers")).toMatch(/X-Grpc-Web/i);
    const other = await preflight("https://evil.example");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("deadlines on the native gRPC path", () => {
  it("the server itself answers DEADLINE_EXCEEDED when the handler outlives grpc-timeout", async () => {
    const t = await startTestApp();
    const blocker = new pg.Client({ connectionString: t.database.url });
    // Connected before anything can fail: a query on a client never connected waits
    // forever, and the `finally` below would turn any failure into a test timeout.
    await blocker.connect();
    try {
      const admin = await staffSession(t, "admin");
      const client = createClient(
        PatientService,
        createGrpcTransport({ baseUrl: t.baseUrl, interceptors: [admin.interceptor] }),
      );
      const { patient } = await client.createPatient({ patient: fromJson(PatientSchema, newPatientJson() as never) });
      await blocker.query("begin; lock table patients in access exclusive mode");
      // A raw HTTP/2 call, so the status comes from the server's trailers and not from a
      // client library enforcing the deadline locally.
      const body = toBinary(GetPatientRequestSchema, create(GetPatientRequestSchema, { name: patient!.name }));
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
      const session = http2.connect(t.baseUrl);
      const started = Date.now();
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/telemed.patient.v1.PatientService/GetPatient",
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": "300m",
          authorization: `Bearer ${admin.accessToken}`,
        });
        stream.on("trailers", resolve);
        stream.on("error", reject);
        stream.resume();
        stream.end(frame);
      });
      session.close();
      expect(trailers["grpc-status"]).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await blocker.query("commit").catch(() => undefined);
      await blocker.end();
      await t.close();
    }
  }, 30_000);
});
