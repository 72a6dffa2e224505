import type { DescMethod, Message } from "@bufbuild/protobuf";
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sex } from "../../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../../gen/telemed/patient/v1/patient_service_pb.js";
import type { RpcTable } from "../../../src/rpc/rpc-table.ts";
import { compileRoutes, matchRoute } from "../../../src/server/rest/http-routes.ts";
import { buildFixtureService, FixtureService } from "./fixture-service.ts";
import { call, echoTable, startRestHarness, type AnyJson, type RestHarness } from "./rest-harness.ts";

/** Search-like fixture methods echo their request in `echo`, and list a few items. */
function echo(method: DescMethod, request: Message): unknown {
  if (method.parent.typeName === FixtureService.typeName) return { items: ["a", "b"], echo: request };
  if (method.name === "GetPatient") return { patient: { name: (request as unknown as { name: string }).name } };
  return {};
}

let harness: RestHarness;
const lastRequest = () => harness.received.at(-1)?.request as AnyJson;

beforeAll(async () => {
  harness = await startRestHarness([PatientService, FixtureService], echo);
});
afterAll(() => harness.close());

describe("route compilation", () => {
  it("skips streaming methods and lists additional bindings", () => {
    const fixture = harness.transcoder.routes.filter((r) => r.rpc.startsWith("/telemed.resttest"));
    expect(fixture.map((r) => `${r.httpMethod} ${r.template}`).sort()).toEqual([
      "GET /fixtures:search",
      "GET /{name=files/**}",
      "GET /{parent=patients/*}/history",
      "POST /{name=patients/*/consultations/*}:cancel",
      "POST /{name=patients/*}:archive",
      "PUT /{name=reasons/*}",
    ]);
    expect(fixture.find((r) => r.template.endsWith("/history"))).toMatchObject({ responseBody: "echo", body: "" });
  });

  it("refuses two rules claiming the same method and path", () => {
    const received: never[] = [];
    const twice = echoTable([PatientService], received, () => ({}));
    const clash = { entries: () => [...twice.entries(), ...twice.entries()].values() } as unknown as RpcTable;
    expect(() => compileRoutes(clash)).toThrow(/already taken/);
  });

  it.each([
    [
      { get: "/{nickname=patients/*}" },
      /Search: google.api.http path variable \{nickname\}: .* has no field "nickname"/,
    ],
    [{ get: "/{patient=patients/*}" }, /must name a singular scalar/],
    [{ get: "/{numbers}" }, /must name a singular scalar/],
    [{ get: "/patients/{name" }, /Search: google.api.http invalid google.api.http path template/],
    [{ post: "/x", body: "nope" }, /body "nope" is not a top-level field/],
    [{ get: "/x", responseBody: "nope" }, /response_body "nope" is not a field/],
  ])("refuses an annotation that cannot work: %j", (rule, why) => {
    const [verb, path] = Object.entries(rule)[0] as [string, string];
    const { body, responseBody } = rule as { body?: string; responseBody?: string };
    const service = buildFixtureService({
      Search: { pattern: { case: verb as "get", value: path }, body, responseBody },
    });
    expect(() => compileRoutes(echoTable([service], [], () => ({})))).toThrow(why);
  });

  it("prefers a custom-verb route over a variable that would swallow the verb", () => {
    const routes = compileRoutes(echoTable([PatientService, FixtureService], [], () => ({})));
    const archive = matchRoute(routes, "POST", "/patients/p-1:archive");
    expect(archive.kind === "found" && archive.route.info.rpc).toBe("/telemed.resttest.v1.FixtureService/Archive");
    expect(matchRoute(routes, "GET", "/patients/p-1:archive")).toEqual({ kind: "wrong-method", allow: ["POST"] });
  });
});

describe("query parameters", () => {
  it("set nested, repeated, enum, bool, int64 and Timestamp fields", async () => {
    const query = [
      "patient.sex=SEX_FEMALE",
      "patient.contact.address.lines=Line%201",
      "patient.contact.address.lines=Line+2",
      "patient.legalName.givenName=Ada",
      "sexes=SEX_MALE",
      "sexes=3",
      "includeDeleted=true",
      "min_age=9007199254740993",
      "since=2024-01-02T03:04:05Z",
      "numbers=1",
      "numbers=-2",
    ].join("&");
    const { status } = await call(`${harness.baseUrl}/fixtures:search?${query}`);
    expect(status).toBe(200);
    const request = lastRequest();
    expect(request.patient.sex).toBe(Sex.FEMALE);
    expect(request.patient.contact.address.lines).toEqual(["Line 1", "Line 2"]);
    expect(request.patient.legalName.givenName).toBe("Ada");
    expect(request.sexes).toEqual([Sex.MALE, Sex.OTHER]);
    expect(request.includeDeleted).toBe(true);
    expect(request.minAge).toBe(9007199254740993n);
    expect(request.since.seconds).toBe(1704164645n);
    expect(request.numbers).toEqual([1, -2]);
  });

  it.each([
    ["patient.sex=SEX_ROBOT", "patient.sex"],
    ["includeDeleted=yes", "include_deleted"],
    ["numbers=1.5", "numbers"],
    ["min_age=99999999999999999999", "min_age"],
    ["since=yesterday", "since"],
    ["patient.emergency_contacts=x", "patient.emergency_contacts"],
    ["patient.nickname=x", "patient.nickname"],
    ["patient=x", "patient"],
  ])("refuses %s with a field violation on %s, without echoing the value", async (query, field) => {
    const { status, body } = await call(`${harness.baseUrl}/fixtures:search?${query}`);
    expect(status).toBe(400);
    expect(body.error.status).toBe("INVALID_ARGUMENT");
    expect(body.error.details[1].fieldViolations[0].field).toBe(field);
    const value = query.split("=")[1] as string;
    if (value.length > 1) expect(JSON.stringify(body)).not.toContain(value);
  });

  it('are refused when body is "*"', async () => {
    const { status, body } = await call(`${harness.baseUrl}/patients/p/consultations/c:cancel?reason=x`, {
      method: "POST",
      json: {},
    });
    expect(status).toBe(400);
    expect(body.error.message).toContain("whole request in the body");
  });
});

describe("bindings", () => {
  it('custom verb with body "*": path binds name, the body the other fields', async () => {
    const { status } = await call(`${harness.baseUrl}/patients/p-1/consultations/c-2:cancel`, {
      method: "POST",
      json: { reason: "feeling better", name: "ignored" },
    });
    expect(status).toBe(200);
    expect(lastRequest()).toMatchObject({ name: "patients/p-1/consultations/c-2", reason: "feeling better" });
  });

  it("a custom verb POST may have no body at all", async () => {
    const { status } = await call(`${harness.baseUrl}/patients/p-1/consultations/c-2:cancel`, { method: "POST" });
    expect(status).toBe(200);
    expect(lastRequest().reason).toBe("");
  });

  it("{name=files/**} binds every remaining segment and keeps %2F encoded; response_body picks a list", async () => {
    const { status, body } = await call(`${harness.baseUrl}/files/scans/2024/a%2Fb%20c.png`);
    expect(status).toBe(200);
    expect(lastRequest().name).toBe("files/scans/2024/a%2Fb c.png");
    expect(body).toEqual(["a", "b"]);
  });

  it("GET /{parent=patients/*}/history (an additional binding) answers with the response_body message", async () => {
    const { status, body } = await call(`${harness.baseUrl}/patients/p-7/history?includeDeleted=true`);
    expect(status).toBe(200);
    expect(body).toEqual({ parent: "patients/p-7", includeDeleted: true });
  });

  it("a scalar body field takes a bare JSON value", async () => {
    const { status } = await call(`${harness.baseUrl}/reasons/r-1`, { method: "PUT", json: "too late" });
    expect(status).toBe(200);
    expect(lastRequest()).toMatchObject({ name: "reasons/r-1", reason: "too late" });
    const wrong = await call(`${harness.baseUrl}/reasons/r-1`, { method: "PUT", json: { reason: "x" } });
    expect(wrong.status).toBe(400);
  });
});

describe("HTTP/2", () => {
  it("serves the same routes over h2c, without pseudo-headers in the context", async () => {
    const session = http2.connect(harness.h2Url);
    try {
      const answer = await new Promise<{ status: number; requestId: unknown; body: string }>((resolve, reject) => {
        const stream = session.request({ ":method": "GET", ":path": "/patients/p-h2", "x-trace": "h2" });
        let status = 0;
        let requestId: unknown;
        let body = "";
        stream.on("response", (headers) => {
          status = headers[":status"] ?? 0;
          requestId = headers["x-request-id"];
        });
        stream.on("data", (chunk) => (body += chunk));
        stream.on("end", () => resolve({ status, requestId, body }));
        stream.on("error", reject);
      });
      expect(answer.status).toBe(200);
      expect(answer.requestId).toBe("test-request-id");
      // GetPatient answers REST with the bare resource (`response_body: "patient"`).
      expect(JSON.parse(answer.body)).toEqual({ name: "patients/p-h2" });
      const context = harness.received.at(-1)!.context;
      expect(context.requestHeader.get("x-trace")).toBe("h2");
      expect([...context.requestHeader.keys()].some((key) => key.startsWith(":"))).toBe(false);
    } finally {
      session.close();
    }
  });
});
