import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { fromBinary, fromJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { PatientSchema, type Sex } from "../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { createGrpcJsClient, grpcUnary } from "../support/grpc-js-client.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

let t: TestApp;
/** CreatePatient and ListPatients are admin-only: an admin sends the bad input, so what is refused is the input. */
let admin: TestSession;
let client: Client<typeof PatientService>;
beforeAll(async () => {
  t = await startTestApp({ READ_MAX_BYTES: "65536" });
  admin = await staffSession(t, "admin");
  client = createClient(
    PatientService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [admin.interceptor] }),
  );
});

afterAll(async () => {
  await t?.close();
});

/** grpc-js metadata carrying the admin's token. */
function adminMetadata(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${admin.accessToken}`);
  return metadata;
}

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  if (!outcome) throw new Error("the call succeeded");
  return outcome;
}

function violatedFields(error: ConnectError): string[] {
  return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

const contact = (over: Record<string, unknown>) => ({ ...(newPatientJson().contact as object), ...over });

/** [what is wrong, patient overrides in JSON, the field the error must name]. */
const invalidPatients: Array<[string, Record<string, unknown>, string]> = [
  ["an email that is not one", { contact: contact({ email: "not-an-email" }) }, "patient.contact.email"],
  ["a phone not in E.164", { contact: contact({ phone: "98123 45678" }) }, "patient.contact.phone"],
  ["a UPI id without a provider", { upiId: "asha.rao" }, "patient.upi_id"],
  ["a language that is not a BCP 47 tag", { preferredLanguage: "english!!" }, "patient.preferred_language"],
  ["a birth date in the future", { birthDate: { year: 2999, month: 1, day: 1 } }, "patient.birth_date"],
  ["a birth date that is not a calendar date", { birthDate: { year: 1990, month: 2, day: 30 } }, "patient.birth_date"],
  ["no birth date", { birthDate: undefined }, "patient.birth_date"],
  ["no given name", { legalName: { familyName: "Rao" } }, "patient.legal_name.given_name"],
  ["a given name over 100 characters", { legalName: { givenName: "A".repeat(101) } }, "patient.legal_name.given_name"],
  ["no email", { contact: contact({ email: "" }) }, "patient.contact.email"],
  [
    "a country code that is not ISO 3166",
    { contact: contact({ address: { regionCode: "India" } }) },
    "patient.contact.address.region_code",
  ],
  ["insurance without a policy number", { insurance: { provider: "Star Health" } }, "patient.insurance.policy_number"],
  [
    "an emergency contact without a valid phone",
    { emergencyContacts: [{ displayName: "Ravi", phone: "123" }] },
    "patient.emergency_contacts[0].phone",
  ],
  [
    "six emergency contacts",
    { emergencyContacts: Array.from({ length: 6 }, () => ({ displayName: "R", phone: "+919800000001" })) },
    "patient.emergency_contacts",
  ],
];

describe("TST-PT002 bad input: INVALID_ARGUMENT naming the field, nothing stored", () => {
  it.each(invalidPatients)("CreatePatient with %s", async (_what, overrides, field) => {
    const patient = fromJson(PatientSchema, newPatientJson(overrides) as never);
    const error = await refusal(client.createPatient({ patient }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(violatedFields(error)).toContain(field);
    expect(error.findDetails(ErrorInfoSchema)[0]?.domain).toBe("patient.telemed.example");
    const page = await client.listPatients({ pageSize: 100 });
    expect(page.patients.some((p) => p.contact?.email === (patient.contact?.email ?? "-"))).toBe(false);
  });

  it("a request_id that is not a UUID, an unknown sex, a bad resource name, a page size over 100", async () => {
    const patient = fromJson(PatientSchema, newPatientJson() as never);
    expect(violatedFields(await refusal(client.createPatient({ patient, requestId: "abc" })))).toEqual(["request_id"]);
    expect(violatedFields(await refusal(client.createPatient({ patient: { ...patient, sex: 99 as Sex } })))).toEqual([
      "patient.sex",
    ]);
    expect(violatedFields(await refusal(client.getPatient({ name: "patients/../etc" })))).toEqual(["name"]);
    expect(violatedFields(await refusal(client.getPatient({ name: "doctors/1" })))).toEqual(["name"]);
    expect(violatedFields(await refusal(client.listPatients({ pageSize: 1000 })))).toEqual(["page_size"]);
    expect(violatedFields(await refusal(client.updatePatient({ patient: { name: "nope" } })))).toEqual(["patient"]);
  });

  it("a well-formed name of no patient is NOT_FOUND", async () => {
    const error = await refusal(client.getPatient({ name: "patients/0192f2a4-0000-7000-8000-000000000000" }));
    expect(error.code).toBe(Code.NotFound);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("PATIENT_NOT_FOUND");
  });
});

describe("malformed requests get clean errors, never INTERNAL", () => {
  const rpc = (method: string) => `${t.baseUrl}/telemed.patient.v1.PatientService/${method}`;

  it("malformed JSON over Connect and over REST", async () => {
    const connect = await fetch(rpc("CreatePatient"), {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: "{nope",
    });
    expect(connect.status).toBe(400);
    expect(((await connect.json()) as { code: string }).code).toBe("invalid_argument");
    const rest = await fetch(`${t.baseUrl}/patients`, {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: "{nope",
    });
    expect(rest.status).toBe(400);
    const body = (await rest.json()) as { error: { status: string; message: string } };
    expect(body.error.status).toBe("INVALID_ARGUMENT");
    expect(body.error.message).not.toMatch(/at \w+ \(/);
  });

  it("wrong content types", async () => {
    const connect = await fetch(rpc("GetPatient"), {
      method: "POST",
      headers: { ...admin.headers, "content-type": "text/plain" },
      body: "hi",
    });
    expect(connect.status).toBe(415);
    const rest = await fetch(`${t.baseUrl}/patients`, {
      method: "POST",
      headers: { ...admin.headers, "content-type": "text/plain" },
      body: "hi",
    });
    expect(rest.status).toBe(415);
  });

  it("oversize messages over Connect, REST and gRPC", async () => {
    const huge = JSON.stringify({ patient: newPatientJson({ preferredLanguage: "x".repeat(200_000) }) });
    const connect = await fetch(rpc("CreatePatient"), {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: huge,
    });
    expect(((await connect.json()) as { code: string }).code).toBe("resource_exhausted");
    const rest = await fetch(`${t.baseUrl}/patients`, {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: huge,
    });
    expect(rest.status).toBe(413);
    const stub = createGrpcJsClient(PatientService, t.address);
    try {
      const error = await grpcUnary(
        stub,
        PatientService.method.getPatient,
        { name: `patients/${"a".repeat(100_000)}` },
        adminMetadata(),
      ).catch((e: grpc.ServiceError) => e);
      expect((error as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      stub.close();
    }
  });

  it("unknown routes and methods", async () => {
    const unknownPath = await fetch(`${t.baseUrl}/no/such/route`, { headers: admin.headers });
    expect(unknownPath.status).toBe(404);
    expect(((await unknownPath.json()) as { error: { status: string } }).error.status).toBe("NOT_FOUND");
    const unknownMethod = await fetch(rpc("NoSuchMethod"), {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: "{}",
    });
    expect(unknownMethod.status).toBe(404);
    const wrongVerb = await fetch(`${t.baseUrl}/patients`, {
      method: "PATCH",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: "{}",
    });
    expect(wrongVerb.status).toBe(405);
  });
});

describe("gRPC errors reach @grpc/grpc-js stubs with code, message and details", () => {
  it("NOT_FOUND and INVALID_ARGUMENT with google.rpc.Status details", async () => {
    const stub = createGrpcJsClient(PatientService, t.address);
    try {
      const missing = (await grpcUnary(
        stub,
        PatientService.method.getPatient,
        { name: "patients/nobody" },
        adminMetadata(),
      ).catch((e) => e)) as grpc.ServiceError;
      expect(missing.code).toBe(grpc.status.NOT_FOUND);
      expect(missing.details).toBe("Patient not found.");
      const invalid = (await grpcUnary(stub, PatientService.method.getPatient, { name: "bad" }, adminMetadata()).catch(
        (e) => e,
      )) as grpc.ServiceError;
      expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT);
      const [statusBytes] = invalid.metadata.get("grpc-status-details-bin") as Buffer[];
      const status = fromBinary(StatusSchema, statusBytes as Buffer);
      const badRequest = status.details.find((d) => d.typeUrl.endsWith("google.rpc.BadRequest"));
      expect(fromBinary(BadRequestSchema, badRequest!.value).fieldViolations[0]?.field).toBe("name");
    } finally {
      stub.close();
    }
  });
});
