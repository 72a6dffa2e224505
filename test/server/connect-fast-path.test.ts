import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as http from "node:http";
import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { GetPatientRequestSchema, PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

/** A raw exchange, so what is compared is the server's bytes, not a client library's reading of them. */
interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

type Send = (path: string, headers: Record<string, string>, body: Buffer | Buffer[]) => Promise<RawResponse>;

const readMaxBytes = 65_536;
const origin = "https://app.example.com";
let t: TestApp;
let port: number;
let keepAlive: http.Agent;
let session: http2.ClientHttp2Session;
let patientName: string;
/** An admin may call every PatientService method on any profile, so the calls here are about the transport. */
let admin: TestSession;

beforeAll(async () => {
  t = await startTestApp({ READ_MAX_BYTES: String(readMaxBytes), CORS_ALLOWED_ORIGINS: origin });
  port = t.app.port;
  keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  session = http2.connect(t.baseUrl);
  admin = await staffSession(t, "admin");
  const client = createClient(
    PatientService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [admin.interceptor] }),
  );
  for (let i = 0; i < 4; i++) {
    const { patient } = await client.createPatient({ patient: fromJson(PatientSchema, newPatientJson() as never) });
    patientName = patient!.name;
  }
});
afterAll(async () => {
  session?.close();
  keepAlive?.destroy();
  await t?.close();
});

const rpc = (method: string) => `/telemed.patient.v1.PatientService/${method}`;
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const jsonHeaders = { "content-type": "application/json", "connect-protocol-version": "1" };

/**
 * The admin's token is added to every raw request unless `headers` has its own
 * `authorization`; an empty one means none at all (an anonymous call).
 */
function authenticated(headers: Record<string, string>): Record<string, string> {
  if (!("authorization" in headers)) return { ...admin.headers, ...headers };
  const { authorization, ...rest } = headers;
  return authorization === "" ? rest : headers;
}

/** HTTP/1.1 on one keep-alive connection; no Content-Length for a body given in parts (chunked). */
const h1: Send = (path, headers, body) =>
  new Promise((resolve, reject) => {
    const options = {
      host: "127.0.0.1",
      port,
      path,
      method: "POST",
      headers: authenticated(headers),
      agent: keepAlive,
    };
    const req = http.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    for (const part of Array.isArray(body) ? body : [body]) req.write(part);
    req.end();
  });

/** HTTP/2 (prior knowledge) on one session; no Content-Length unless given. */
const h2: Send = (path, headers, body) =>
  new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, ...authenticated(headers) });
    let head: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (received) => {
      head = received;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("close", () => {
      const { ":status": status, ...headers } = head;
      if (status === undefined) reject(new Error(`stream closed without an answer (code ${stream.rstCode})`));
      else resolve({ status: Number(status), headers, body: Buffer.concat(chunks) });
    });
    stream.on("error", () => undefined);
    for (const part of Array.isArray(body) ? body : [body]) stream.write(part);
    stream.end();
  });

const transports: Array<[string, Send]> = [
  ["HTTP/1.1", h1],
  ["HTTP/2", h2],
];

/** Status, headers without the date, body: what must not differ between the two paths. */
function shape(response: RawResponse) {
  const { date: _date, ...headers } = response.headers;
  return { status: response.status, headers, body: response.body.toString("base64") };
}

function errorOf(response: RawResponse): { code: string; message?: string; details?: Array<{ type: string }> } {
  expect(response.headers["content-type"]).toBe("application/json");
  return JSON.parse(response.body.toString("utf8"));
}

describe("Connect unary calls on the native path, with Connect's own clients", () => {
  it.each([
    ["JSON over HTTP/1.1", { httpVersion: "1.1" as const, useBinaryFormat: false }],
    ["binary over HTTP/1.1", { httpVersion: "1.1" as const, useBinaryFormat: true }],
    ["JSON over HTTP/2", { httpVersion: "2" as const, useBinaryFormat: false }],
    ["binary over HTTP/2", { httpVersion: "2" as const, useBinaryFormat: true }],
  ])("create, read, refuse with details: %s", async (_name, options) => {
    const client: Client<typeof PatientService> = createClient(
      PatientService,
      createConnectTransport({ baseUrl: t.baseUrl, ...options, interceptors: [admin.interceptor] }),
    );
    const { patient } = await client.createPatient({ patient: fromJson(PatientSchema, newPatientJson() as never) });
    const read = await client.getPatient({ name: patient!.name });
    expect(read.patient?.contact?.email).toBe(patient?.contact?.email);

    const missing = await client
      .getPatient({ name: "patients/0192f2a4-0000-7000-8000-000000000000" })
      .catch((e: unknown) => ConnectError.from(e));
    expect(missing).toBeInstanceOf(ConnectError);
    expect((missing as ConnectError).code).toBe(Code.NotFound);
    expect((missing as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason).toBe("PATIENT_NOT_FOUND");

    const invalid = ConnectError.from(await client.getPatient({ name: "doctors/1" }).catch((e: unknown) => e));
    expect(invalid.code).toBe(Code.InvalidArgument);
    const fields = invalid.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    expect(fields).toEqual(["name"]);
  });

  it("echoes x-request-id, counts the call as protocol connect, and keeps CORS headers", async () => {
    const response = await fetch(`${t.baseUrl}${rpc("GetPatient")}`, {
      method: "POST",
      headers: { ...jsonHeaders, ...admin.headers, "x-request-id": "fast-path-rid-1", origin },
      body: JSON.stringify({ name: patientName }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe("fast-path-rid-1");
    expect(response.headers.get("access-control-allow-origin")).toBe(origin);
    expect(((await response.json()) as { patient: { name: string } }).patient.name).toBe(patientName);
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/rpc_server_handled_total\{method="GetPatient",code="ok",protocol="connect"\} \d+/);
  });
});

describe("the native path answers byte for byte what connect-node answers", () => {
  // The native path claims only exact RPC paths; with a query string the same call goes to
  // connect-node, which ignores the query of a POST. So each request is sent both ways.
  const viaConnectNode = (path: string) => `${path}?via=connect-node`;
  const binaryGet = () =>
    Buffer.from(toBinary(GetPatientRequestSchema, create(GetPatientRequestSchema, { name: patientName })));
  const cases: Array<[string, string, Record<string, string>, () => Buffer]> = [
    ["a read in JSON", rpc("GetPatient"), jsonHeaders, () => json({ name: patientName })],
    [
      "an anonymous read (UNAUTHENTICATED)",
      rpc("GetPatient"),
      { ...jsonHeaders, authorization: "" },
      () => json({ name: patientName }),
    ],
    ["a read in binary", rpc("GetPatient"), { "content-type": "application/proto" }, binaryGet],
    [
      "JSON with a charset",
      rpc("GetPatient"),
      { "content-type": "application/json; charset=utf-8" },
      () => json({ name: patientName }),
    ],
    ["unknown JSON fields (ignored)", rpc("GetPatient"), jsonHeaders, () => json({ name: patientName, extra: 1 })],
    [
      "NOT_FOUND with ErrorInfo",
      rpc("GetPatient"),
      jsonHeaders,
      () => json({ name: "patients/0192f2a4-0000-7000-8000-000000000000" }),
    ],
    [
      "INVALID_ARGUMENT with BadRequest",
      rpc("CreatePatient"),
      jsonHeaders,
      () => json({ patient: newPatientJson({ upiId: "x" }) }),
    ],
    ["malformed JSON", rpc("GetPatient"), jsonHeaders, () => Buffer.from("{nope")],
    ["an empty JSON body", rpc("GetPatient"), jsonHeaders, () => Buffer.alloc(0)],
    [
      "an invalid connect-timeout-ms",
      rpc("GetPatient"),
      { ...jsonHeaders, "connect-timeout-ms": "soon" },
      () => json({ name: patientName }),
    ],
    [
      "a gzip-accepting list over 1 KiB",
      rpc("ListPatients"),
      { ...jsonHeaders, "accept-encoding": "gzip" },
      () => json({ pageSize: 4 }),
    ],
    [
      "a brotli-accepting list over 1 KiB",
      rpc("ListPatients"),
      { ...jsonHeaders, "accept-encoding": "br" },
      () => json({ pageSize: 4 }),
    ],
  ];

  for (const [transport, send] of transports) {
    it.each(cases)(`%s over ${transport}`, async (_name, path, headers, body) => {
      const fixed = { ...headers, "x-request-id": "same-request-id" };
      const native = await send(path, fixed, body());
      const reference = await send(viaConnectNode(path), fixed, body());
      expect(shape(native)).toEqual(shape(reference));
    });
  }

  it("with the codes and statuses connect-node gives", async () => {
    const malformed = await h1(rpc("GetPatient"), jsonHeaders, Buffer.from("{nope"));
    expect([malformed.status, errorOf(malformed).code]).toEqual([400, "invalid_argument"]);
    // connect-node reports undecodable binary as INTERNAL; it is the client's mistake, so the
    // native path (which serves every uncompressed call) answers INVALID_ARGUMENT, as for JSON.
    const binary = await h2(rpc("GetPatient"), { "content-type": "application/proto" }, Buffer.from([0xff, 0xff]));
    expect([binary.status, errorOf(binary).code]).toEqual([400, "invalid_argument"]);
    const badTimeout = await h2(rpc("GetPatient"), { ...jsonHeaders, "connect-timeout-ms": "-1" }, json({}));
    expect([badTimeout.status, errorOf(badTimeout).code]).toEqual([400, "invalid_argument"]);
    const anonymous = await h2(rpc("GetPatient"), { ...jsonHeaders, authorization: "" }, json({ name: patientName }));
    expect([anonymous.status, errorOf(anonymous).code]).toEqual([401, "unauthenticated"]);
    const list = await h1(rpc("ListPatients"), { ...jsonHeaders, "accept-encoding": "gzip" }, json({ pageSize: 4 }));
    expect(list.headers["content-encoding"]).toBe("gzip");
  });
});

describe("what the native path leaves to connect-node", () => {
  it.each(transports)("a wrong or missing content type is 415 over %s", async (_name, send) => {
    expect((await send(rpc("GetPatient"), { "content-type": "text/plain" }, Buffer.from("hi"))).status).toBe(415);
    expect((await send(rpc("GetPatient"), {}, Buffer.from("{}"))).status).toBe(415);
  });

  it.each(transports)("compressed requests are served by connect-node over %s", async (_name, send) => {
    const gzipped = await send(
      rpc("GetPatient"),
      { ...jsonHeaders, "content-encoding": "gzip" },
      gzipSync(JSON.stringify({ name: patientName })),
    );
    expect(gzipped.status).toBe(200);
    expect(JSON.parse(gzipped.body.toString("utf8")).patient.name).toBe(patientName);
    const unknown = await send(rpc("GetPatient"), { ...jsonHeaders, "content-encoding": "snappy" }, json({}));
    expect([unknown.status, errorOf(unknown).code]).toEqual([501, "unimplemented"]);
  });

  it("GET, an unknown protocol version and an unknown method", async () => {
    const get = await fetch(`${t.baseUrl}${rpc("GetPatient")}?connect=v1&encoding=json&message=%7B%7D`, {
      headers: admin.headers,
    });
    expect(get.status).toBe(405);
    const v2 = await h1(
      rpc("GetPatient"),
      { ...jsonHeaders, "connect-protocol-version": "2" },
      json({ name: patientName }),
    );
    expect(v2.status).toBe(200);
    expect((await h1(rpc("NoSuchMethod"), jsonHeaders, json({}))).status).toBe(404);
  });
});

describe("limits on the native path", () => {
  const huge = () => Buffer.alloc(readMaxBytes + 1, 0x20);

  it.each(transports)("a body over readMaxBytes is RESOURCE_EXHAUSTED over %s, announced or not", async (_n, send) => {
    const announced = await send(
      rpc("GetPatient"),
      { ...jsonHeaders, "content-length": String(readMaxBytes + 1) },
      huge(),
    );
    expect([announced.status, errorOf(announced).code]).toEqual([429, "resource_exhausted"]);
    const streamed = await send(rpc("GetPatient"), jsonHeaders, [huge().subarray(0, 1000), huge().subarray(1000)]);
    expect([streamed.status, errorOf(streamed).code]).toEqual([429, "resource_exhausted"]);
    // The connection (HTTP/1.1) or session (HTTP/2) still serves the next call.
    const next = await send(rpc("GetPatient"), jsonHeaders, json({ name: patientName }));
    expect(next.status).toBe(200);
  });

  it("a body far over the limit closes the HTTP/1.1 connection after the answer, as connect-node", async () => {
    const parts = Array.from({ length: 8 }, () => Buffer.alloc(64 * 1024, 0x20));
    const refused = await h1(rpc("GetPatient"), jsonHeaders, parts);
    expect([refused.status, errorOf(refused).code, refused.headers.connection]).toEqual([
      429,
      "resource_exhausted",
      "close",
    ]);
  });

  it.each(transports)(
    "a handler outliving connect-timeout-ms is answered DEADLINE_EXCEEDED over %s",
    async (_n, send) => {
      const blocker = new pg.Client({ connectionString: t.database.url });
      await blocker.connect();
      try {
        // Reads wait behind this lock, so the call is provably still in the handler at its deadline.
        await blocker.query("begin; lock table patients in access exclusive mode");
        const started = Date.now();
        const late = await send(
          rpc("GetPatient"),
          { ...jsonHeaders, "connect-timeout-ms": "300" },
          json({ name: patientName }),
        );
        expect([late.status, errorOf(late).code]).toEqual([504, "deadline_exceeded"]);
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        await blocker.query("commit").catch(() => undefined);
        await blocker.end();
      }
    },
  );
});
