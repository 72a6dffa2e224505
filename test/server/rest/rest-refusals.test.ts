import * as http from "node:http";
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatientService } from "../../../gen/telemed/patient/v1/patient_service_pb.js";
import { call, fallthroughBody, startRestHarness, type AnyJson, type RestHarness } from "./rest-harness.ts";

/** Requests the transcoder must refuse (or leave to Connect) before or instead of calling a method. */
let harness: RestHarness;

beforeAll(async () => {
  harness = await startRestHarness([PatientService], () => ({}));
});
afterAll(() => harness.close());

describe("REST refusals", () => {
  const expectError = (body: AnyJson, httpStatus: number, status: string, reason: string) => {
    expect(body.error).toMatchObject({ code: httpStatus, status });
    expect(body.error.details[0]).toMatchObject({
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason,
      domain: "patient.telemed.example",
    });
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
  };

  it("405 with an Allow header for a known path and the wrong method", async () => {
    const { status, headers, body } = await call(`${harness.baseUrl}/patients/p-1`, { method: "POST", json: {} });
    expect(status).toBe(405);
    expect(headers.get("allow")?.split(", ").sort()).toEqual(["DELETE", "GET", "PATCH", "PUT"]);
    expectError(body, 405, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED");
    const list = await call(`${harness.baseUrl}/patients`, { method: "DELETE" });
    expect(list.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "POST"]);
  });

  it.each([
    "/nothing",
    "/patients/p-1/extra",
    "/patients/",
    "/patients//x",
    "/telemed.patient.v1.PatientService/GetPatient",
  ])("resolves false for %s so the request falls through", async (path) => {
    const before = harness.received.length;
    const { status, body } = await call(`${harness.baseUrl}${path}`);
    expect(status).toBe(404);
    expect(body).toBe(fallthroughBody);
    expect(harness.handled.at(-1)).toBe(false);
    expect(harness.received.length).toBe(before);
  });

  it("415 for a body that is not application/json", async () => {
    const text = await call(`${harness.baseUrl}/patients`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "text/plain" },
    });
    expect(text.status).toBe(415);
    expectError(text.body, 415, "INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE");
    const latin1 = await call(`${harness.baseUrl}/patients`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json; charset=iso-8859-1" },
    });
    expect(latin1.status).toBe(415);
    const charset = await call(`${harness.baseUrl}/patients`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "Application/JSON; charset=UTF-8" },
    });
    expect(charset.status).toBe(200);
  });

  it("413 RESOURCE_EXHAUSTED for a declared length over readMaxBytes, without calling the method", async () => {
    const before = harness.received.length;
    const big = { legalName: { givenName: "x".repeat(5000) } };
    const { status, body } = await call(`${harness.baseUrl}/patients`, { method: "POST", json: big });
    expect(status).toBe(413);
    expectError(body, 413, "RESOURCE_EXHAUSTED", "REQUEST_TOO_LARGE");
    expect(harness.received.length).toBe(before);
  });

  it("413 for a chunked body while it is still being sent, counting the bytes read", async () => {
    const { port } = new URL(harness.baseUrl);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({
        port,
        host: "127.0.0.1",
        path: "/patients",
        method: "POST",
        headers: { "content-type": "application/json" },
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      // Never ends: the answer must come from counting, not from the end of the body.
      req.write(`{"legalName": {"givenName": "${"y".repeat(6000)}`);
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error.status).toBe("RESOURCE_EXHAUSTED");
  });

  it("413 over HTTP/2 resets the stream after answering, so an endless upload does not stay open", async () => {
    const session = http2.connect(harness.h2Url);
    try {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": "/patients", "content-type": "application/json" });
        let status = 0;
        let body = "";
        stream.on("response", (headers) => {
          status = headers[":status"] ?? 0;
        });
        stream.on("data", (chunk) => {
          body += chunk;
        });
        stream.on("close", () => resolve({ status, body }));
        stream.on("error", reject);
        stream.write(`{"legalName": {"givenName": "${"z".repeat(6000)}`);
      });
      expect(answer.status).toBe(413);
      expect(JSON.parse(answer.body).error.status).toBe("RESOURCE_EXHAUSTED");
    } finally {
      session.close();
    }
  });

  it("400 INVALID_ARGUMENT for malformed JSON, without echoing the body", async () => {
    const { status, body } = await call(`${harness.baseUrl}/patients`, {
      method: "POST",
      body: '{"legalName": {"givenName": "SECRET-NAME"',
      headers: { "content-type": "application/json" },
    });
    expect(status).toBe(400);
    expectError(body, 400, "INVALID_ARGUMENT", "MALFORMED_JSON");
    expect(body.error.message).toBe("The request body is not valid JSON.");
    expect(JSON.stringify(body)).not.toContain("SECRET");
  });

  it("400 for JSON that does not fit the message: unknown keys, wrong types, duplicate keys", async () => {
    const unknown = await call(`${harness.baseUrl}/patients`, { method: "POST", json: { nickname: "x" } });
    expect(unknown.status).toBe(400);
    expectError(unknown.body, 400, "INVALID_ARGUMENT", "INVALID_BODY");
    expect(unknown.body.error.message).toContain('"nickname" is unknown');
    const wrongType = await call(`${harness.baseUrl}/patients`, { method: "POST", json: { upiId: 12345 } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toContain("upi_id");
    expect(wrongType.body.error.message).not.toContain("12345");
    const duplicate = await call(`${harness.baseUrl}/patients`, {
      method: "POST",
      body: '{"upiId": "a@b", "upiId": "c@d"}',
      headers: { "content-type": "application/json" },
    });
    expect(duplicate.status).toBe(400);
  });

  it("400 for a body on a route that takes none", async () => {
    const { status, body } = await call(`${harness.baseUrl}/patients/p-1`, { method: "DELETE", json: { etag: "x" } });
    expect(status).toBe(400);
    expectError(body, 400, "INVALID_ARGUMENT", "BODY_NOT_ALLOWED");
  });

  it("400 for unknown, repeated-singular, badly typed and path-bound query parameters, naming the parameter", async () => {
    const unknown = await call(`${harness.baseUrl}/patients?page_size=10&colour=blue`);
    expect(unknown.status).toBe(400);
    expect(Object.keys(unknown.body.error.details[0])[0]).toBe("@type");
    expectError(unknown.body, 400, "INVALID_ARGUMENT", "UNKNOWN_QUERY_PARAMETER");
    expect(unknown.body.error.details[1]).toEqual({
      "@type": "type.googleapis.com/google.rpc.BadRequest",
      fieldViolations: [{ field: "colour", description: 'Unknown query parameter "colour".' }],
    });
    const twice = await call(`${harness.baseUrl}/patients?page_size=1&page_size=2`);
    expect(twice.body.error.details[0].reason).toBe("INVALID_QUERY_PARAMETER");
    const notNumber = await call(`${harness.baseUrl}/patients?page_size=ten`);
    expect(notNumber.status).toBe(400);
    expect(notNumber.body.error.details[1].fieldViolations[0].field).toBe("page_size");
    const bound = await call(`${harness.baseUrl}/patients/p-1?name=patients/p-2`);
    expect(bound.status).toBe(400);
    expect(bound.body.error.message).toContain("already carries");
    const bodyBound = await call(`${harness.baseUrl}/patients/p-1?patient.upi_id=a@b`, { method: "PUT", json: {} });
    expect(bodyBound.status).toBe(400);
  });

  it("400 for malformed percent-encoding in a path variable", async () => {
    const { status, body } = await call(`${harness.baseUrl}/patients/%E0%A4%A`);
    expect(status).toBe(400);
    expect(body.error.details[0].reason).toBe("INVALID_PATH_VALUE");
  });
});
