import { create, toBinary, type DescMethod, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DebugInfoSchema, ErrorInfoSchema } from "../../../gen/google/rpc/error_details_pb.js";
import {
  PatientService,
  type CreatePatientRequest,
  type GetPatientRequest,
  type ListPatientsRequest,
  type UpdatePatientRequest,
} from "../../../gen/telemed/patient/v1/patient_service_pb.js";
import { statusError } from "../../../src/rpc/error-mapping.ts";
import { call, startRestHarness, type RestHarness } from "./rest-harness.ts";

/** Per-test behaviour of a method, by method name; the default echoes the request back. */
const behaviour = new Map<string, (request: Message) => unknown>();

function echo(method: DescMethod, request: Message): unknown {
  const override = behaviour.get(method.name);
  if (override) return override(request);
  switch (method.name) {
    case "GetPatient":
      return { patient: { name: (request as GetPatientRequest).name } };
    case "CreatePatient":
    case "UpdatePatient":
      return { patient: (request as CreatePatientRequest | UpdatePatientRequest).patient };
    case "ListPatients": {
      const list = request as ListPatientsRequest;
      return { patients: [{ name: "patients/a" }], nextPageToken: `${list.pageSize}:${list.pageToken}` };
    }
    default:
      return {};
  }
}

let harness: RestHarness;
const last = () => harness.received.at(-1);

beforeAll(async () => {
  harness = await startRestHarness([PatientService], echo);
});
afterAll(() => harness.close());
beforeEach(() => behaviour.clear());

describe("REST routes", () => {
  it("lists every annotated unary method, additional bindings included", () => {
    const routes = harness.transcoder.routes.map((r) => `${r.httpMethod} ${r.template} ${r.rpc.split("/")[2]}`);
    expect(routes.sort()).toEqual([
      "DELETE /{name=patients/*} DeletePatient",
      "GET /patients ListPatients",
      "GET /{name=patients/*} GetPatient",
      "PATCH /{patient.name=patients/*} UpdatePatient",
      "POST /patients CreatePatient",
      "PUT /{patient.name=patients/*} UpdatePatient",
    ]);
  });
});

describe("REST transcoding of PatientService", () => {
  it("GET /patients/{id} binds the path variable with its literal part", async () => {
    const { status, headers, body } = await call(`${harness.baseUrl}/patients/p-123`, { headers: { "x-trace": "t1" } });
    expect(status).toBe(200);
    expect(headers.get("content-type")).toBe("application/json");
    expect(headers.get("x-request-id")).toBe("test-request-id");
    // `response_body: "patient"`: REST answers with the bare resource.
    expect(body).toEqual({ name: "patients/p-123" });
    const { context, request } = last()!;
    expect((request as GetPatientRequest).name).toBe("patients/p-123");
    expect(context.protocolName).toBe("rest");
    expect(context.requestMethod).toBe("GET");
    expect(context.url).toBe("/patients/p-123");
    expect(context.requestHeader.get("x-trace")).toBe("t1");
    expect(harness.handled.at(-1)).toBe(true);
  });

  it('POST /patients maps the body to the "patient" field and the query to the rest', async () => {
    const requestId = "5f1c3a52-8a0e-4c55-9a4e-2b6f0f8d9c11";
    const patient = {
      legalName: { givenName: "Ada", familyName: "Lovelace" },
      sex: "SEX_FEMALE",
      contact: { email: "ada@example.com" },
    };
    const { status, body } = await call(`${harness.baseUrl}/patients?request_id=${requestId}`, {
      method: "POST",
      json: patient,
    });
    expect(status).toBe(200);
    expect(body).toEqual(patient);
    const request = last()!.request as CreatePatientRequest;
    expect(request.requestId).toBe(requestId);
    expect(request.patient?.legalName?.givenName).toBe("Ada");
  });

  it("PUT /patients/{id} derives update_mask from the JSON body, and the path wins over the body's name", async () => {
    const patch = {
      name: "patients/someone-else",
      contact: { phone: "+4915123456789", address: { locality: "Berlin", lines: ["Unter den Linden 1"] } },
      upiId: "",
      birthDate: { year: 1990, month: 5, day: 17 },
      insurance: null,
    };
    const { status } = await call(`${harness.baseUrl}/patients/p-1`, { method: "PUT", json: patch });
    expect(status).toBe(200);
    const request = last()!.request as UpdatePatientRequest;
    expect(request.patient?.name).toBe("patients/p-1");
    expect(request.updateMask?.paths).toEqual([
      "contact.phone",
      "contact.address.locality",
      "contact.address.lines",
      "upi_id",
      "birth_date",
      "insurance",
    ]);
  });

  it("PATCH (an additional binding) derives the mask too, but keeps a mask the client sent", async () => {
    await call(`${harness.baseUrl}/patients/p-1`, { method: "PATCH", json: { upiId: "ada@upi" } });
    expect((last()!.request as UpdatePatientRequest).updateMask?.paths).toEqual(["upi_id"]);
    await call(`${harness.baseUrl}/patients/p-1?updateMask=contact.email,upiId`, {
      method: "PUT",
      json: { upiId: "x@y" },
    });
    expect((last()!.request as UpdatePatientRequest).updateMask?.paths).toEqual(["contact.email", "upi_id"]);
  });

  it("leaves update_mask unset when the body names no field to change", async () => {
    await call(`${harness.baseUrl}/patients/p-1`, { method: "PUT", json: { name: "patients/p-1" } });
    expect((last()!.request as UpdatePatientRequest).updateMask).toBeUndefined();
  });

  it("GET /patients reads page_size and pageToken from the query", async () => {
    const { status, body } = await call(`${harness.baseUrl}/patients?page_size=10&pageToken=abc%20def`);
    expect(status).toBe(200);
    expect(body).toEqual({ patients: [{ name: "patients/a" }], nextPageToken: "10:abc def" });
  });

  it("DELETE /patients/{id} answers {} and reads etag from the query", async () => {
    const { status, body } = await call(`${harness.baseUrl}/patients/p-9?etag=W1`, { method: "DELETE" });
    expect(status).toBe(200);
    expect(body).toEqual({});
    expect(last()!.request).toMatchObject({ name: "patients/p-9", etag: "W1" });
  });
});

describe("REST error mapping", () => {
  it("answers a handler's error in Google's JSON shape with its ErrorInfo", async () => {
    behaviour.set("GetPatient", () => {
      throw statusError(Code.NotFound, "PATIENT_NOT_FOUND", "Patient not found.", [], { patient: "patients/p-404" });
    });
    const { status, headers, body } = await call(`${harness.baseUrl}/patients/p-404`);
    expect(status).toBe(404);
    expect(headers.get("x-request-id")).toBe("test-request-id");
    expect(body).toEqual({
      error: {
        code: 404,
        message: "Patient not found.",
        status: "NOT_FOUND",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "PATIENT_NOT_FOUND",
            domain: "patient.telemed.example",
            metadata: { patient: "patients/p-404" },
          },
        ],
      },
    });
  });

  it.each([
    [Code.InvalidArgument, 400, "INVALID_ARGUMENT"],
    [Code.FailedPrecondition, 400, "FAILED_PRECONDITION"],
    [Code.OutOfRange, 400, "OUT_OF_RANGE"],
    [Code.Unauthenticated, 401, "UNAUTHENTICATED"],
    [Code.PermissionDenied, 403, "PERMISSION_DENIED"],
    [Code.NotFound, 404, "NOT_FOUND"],
    [Code.Aborted, 409, "ABORTED"],
    [Code.AlreadyExists, 409, "ALREADY_EXISTS"],
    [Code.ResourceExhausted, 429, "RESOURCE_EXHAUSTED"],
    [Code.Canceled, 499, "CANCELLED"],
    [Code.Internal, 500, "INTERNAL"],
    [Code.Unimplemented, 501, "UNIMPLEMENTED"],
    [Code.Unavailable, 503, "UNAVAILABLE"],
    [Code.DeadlineExceeded, 504, "DEADLINE_EXCEEDED"],
  ])("maps code %i to HTTP %i %s", async (code, httpStatus, name) => {
    behaviour.set("GetPatient", () => {
      throw new ConnectError("no", code);
    });
    const { status, body } = await call(`${harness.baseUrl}/patients/p-1`);
    expect(status).toBe(httpStatus);
    expect(body).toEqual({ error: { code: httpStatus, message: "no", status: name } });
  });

  it("renders incoming (wire) details through the registry and withholds DebugInfo", async () => {
    behaviour.set("GetPatient", () => {
      const info = create(ErrorInfoSchema, { reason: "UPSTREAM", domain: "doctor.telemed.example" });
      const error = new ConnectError("upstream said no", Code.Unavailable, undefined, [
        { desc: DebugInfoSchema, value: { stackEntries: ["at secret.ts:1"], detail: "boom" } },
      ]);
      // Details as a client decodes them off the wire: type name and bytes.
      error.details.unshift({ type: "google.rpc.ErrorInfo", value: toBinary(ErrorInfoSchema, info) });
      error.details.push({ type: "unknown.Type", value: new Uint8Array([1, 2]) });
      throw error;
    });
    const { status, body } = await call(`${harness.baseUrl}/patients/p-1`);
    expect(status).toBe(503);
    expect(body.error.details).toEqual([
      { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "UPSTREAM", domain: "doctor.telemed.example" },
    ]);
  });

  it("answers anything that is not a ConnectError as a bare INTERNAL, without its message", async () => {
    behaviour.set("GetPatient", () => {
      throw new Error("password=hunter2 at db.ts:12");
    });
    const { status, body } = await call(`${harness.baseUrl}/patients/p-1`);
    expect(status).toBe(500);
    expect(body.error.status).toBe("INTERNAL");
    expect(JSON.stringify(body)).not.toContain("hunter2");
  });

  it("aborts the handler's signal when the client goes away", async () => {
    let aborted: (reason: unknown) => void = () => {};
    const abortedReason = new Promise((resolve) => (aborted = resolve));
    behaviour.set("GetPatient", () => new Promise(() => {}));
    const client = new AbortController();
    const pending = fetch(`${harness.baseUrl}/patients/p-slow`, { signal: client.signal }).catch(
      () => "client aborted",
    );
    await expect.poll(() => last()?.context.url).toBe("/patients/p-slow");
    last()!.context.signal.addEventListener("abort", () => aborted(last()!.context.signal.reason));
    client.abort();
    expect(await pending).toBe("client aborted");
    const reason = await abortedReason;
    expect(reason).toBeInstanceOf(ConnectError);
    expect((reason as ConnectError).code).toBe(Code.Canceled);
  });
});
