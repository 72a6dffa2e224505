import {
  create,
  createFileRegistry,
  type DescMethod,
  type DescService,
  fromBinary,
  type Message,
  type MessageInitShape,
  setExtension,
  toBinary,
} from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  type ServerReflectionResponse,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { DoctorService } from "../../gen/telemed/doctor/v1/doctor_service_pb.js";
import { AccessPolicySchema, access } from "../../gen/telemed/patient/v1/access_policy_pb.js";
import { AuditAction } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { ConsultationService } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { patientIdOf, policyOf, type ResolvedPolicy, requirePolicies } from "../../src/auth/access-policy.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

/** The policy of a method that must have one. */
function policy(method: DescMethod): ResolvedPolicy {
  const resolved = policyOf(method);
  if (resolved === undefined) throw new Error(`${method.parent.typeName}.${method.name} has no policy`);
  return resolved;
}

describe("issue #3: every RPC the server serves declares its access policy (walked by reflection)", () => {
  let t: TestApp;
  let client: grpc.Client;
  let served: DescService[];
  beforeAll(async () => {
    t = await startTestApp();
    client = new grpc.Client(t.address, grpc.credentials.createInsecure());
    served = await servicesByReflection(client);
  });
  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it("serves the Patient Service's ten services besides health and reflection", () => {
    const names = served.map((service) => service.typeName);
    expect(names).toEqual(
      expect.arrayContaining([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "telemed.patient.v1.AuthService",
        "telemed.patient.v1.PatientService",
        "telemed.patient.v1.FamilyService",
        "telemed.patient.v1.AuditService",
        "telemed.patient.v1.ConsultationService",
        "telemed.patient.v1.NotificationService",
        "telemed.patient.v1.EmergencyService",
        "telemed.patient.v1.RecordService",
        "telemed.patient.v1.InsightService",
        "telemed.patient.v1.BillingService",
      ]),
    );
  });

  it("finds a policy on every method of every served service, in the reflected descriptors", () => {
    const methods = served.flatMap((service) => service.methods);
    expect(methods.length).toBeGreaterThan(80);
    const missing = methods.filter((method) => policyOf(method) === undefined).map((method) => method.name);
    expect(missing).toEqual([]);
    expect(() => requirePolicies(served)).not.toThrow();
  });

  it("answers UNAUTHENTICATED to an anonymous caller of every method that is not anonymous", async () => {
    const answered: string[] = [];
    let checked = 0;
    for (const method of served.flatMap((service) => service.methods)) {
      if (policy(method).anonymous) continue;
      checked++;
      const code = await anonymousCall(client, method);
      if (code !== grpc.status.UNAUTHENTICATED) answered.push(`${method.parent.name}.${method.name}: ${code}`);
    }
    expect(checked).toBeGreaterThan(60);
    expect(answered).toEqual([]);
  });
});

describe("policyOf and readPatientId", () => {
  const { getPatient, updatePatient, listPatients } = PatientService.method;

  it("reads the patient id from `name`, `parent` and a nested `patient.name`", () => {
    expect(policy(getPatient).patientField).toEqual(["name"]);
    expect(policy(getPatient).readPatientId(create(getPatient.input, { name: "patients/p-1" }))).toBe("p-1");

    const createDependent = FamilyService.method.createDependent;
    expect(policy(createDependent).patientField).toEqual(["parent"]);
    expect(policy(createDependent).readPatientId(create(createDependent.input, { parent: "patients/g_2" }))).toBe(
      "g_2",
    );

    const update = policy(updatePatient);
    expect(update.patientField).toEqual(["patient", "name"]);
    expect(update.readPatientId(create(updatePatient.input, { patient: { name: "patients/p3" } }))).toBe("p3");
    expect(update.readPatientId(create(updatePatient.input, {}))).toBeUndefined();
  });

  it("takes the first segment of a child resource name", () => {
    const join = ConsultationService.method.getConsultationJoinDetails;
    const request = create(join.input, { name: "patients/p4/consultations/c9/joinDetails" });
    expect(policy(join).readPatientId(request)).toBe("p4");
  });

  it("reads nothing when the field is empty or the method names no patient", () => {
    expect(policy(getPatient).readPatientId(create(getPatient.input, {}))).toBeUndefined();
    expect(policy(listPatients).patientField).toEqual([]);
    expect(policy(listPatients).readPatientId(create(listPatients.input, {}))).toBeUndefined();
    // The dependent accepts a link named under the guardian: the handler checks, not the policy.
    const accept = FamilyService.method.acceptFamilyLink;
    expect(policy(accept).patientField).toEqual([]);
    expect(policy(accept).readPatientId(create(accept.input, { name: "patients/g1/familyLinks/l1" }))).toBeUndefined();
  });

  it("reads nothing from a malformed name or the `patients/-` wildcard", () => {
    const read = (name: string) => policy(getPatient).readPatientId(create(getPatient.input, { name }));
    for (const name of [
      "doctors/d1",
      "patients",
      "patients/",
      "patients//records/r1",
      "patients/-",
      "patients/a b",
      "patientsX/p1",
      "/patients/p1",
      `patients/${"x".repeat(65)}`,
    ]) {
      expect(read(name), name).toBeUndefined();
    }
    const list = ConsultationService.method.listConsultations;
    expect(policy(list).readPatientId(create(list.input, { parent: "patients/-" }))).toBeUndefined();
    expect(patientIdOf("patients/p1/records/r1")).toBe("p1");
    expect(patientIdOf(`patients/${"x".repeat(64)}`)).toBe("x".repeat(64));
  });

  it("maps roles, grant and audit action to what the pipeline uses", () => {
    expect(policy(getPatient)).toMatchObject({
      anonymous: false,
      beforeMfa: false,
      proxyGrant: FamilyGrant.MANAGE_PROFILE,
      audit: AuditAction.READ,
    });
    expect([...policy(getPatient).roles].sort()).toEqual(["admin", "patient"]);
    expect(policy(PatientService.method.createPatient).roles).toEqual(new Set(["admin"]));
    expect(policy(FamilyService.method.getFamilyLink).proxyGrant).toBeUndefined();
    expect(policy(ConsultationService.method.listDoctors).audit).toBeUndefined();
  });

  it("gives health and reflection the built-in anonymous policy", () => {
    const methods = [...Health.methods, ...ServerReflection.methods];
    expect(methods.length).toBeGreaterThan(3);
    for (const method of methods) expect(policy(method)).toMatchObject({ anonymous: true, audit: undefined });
  });
});

describe("requirePolicies", () => {
  it("keys the policies by /package.Service/Method", () => {
    const policies = requirePolicies([PatientService, FamilyService]);
    expect(policies.size).toBe(PatientService.methods.length + FamilyService.methods.length);
    expect(policies.get("/telemed.patient.v1.PatientService/GetPatient")?.audit).toBe(AuditAction.READ);
    expect(policies.get("/telemed.patient.v1.FamilyService/CreateDependent")?.patientField).toEqual(["parent"]);
  });

  it("lists every method without a policy in one error", () => {
    // The Doctor Service's contract is a sibling's: it carries no policies of ours.
    const message = thrownBy(() => requirePolicies([PatientService, DoctorService]));
    expect(message).toContain(`on ${DoctorService.methods.length} method(s)`);
    for (const method of DoctorService.methods) expect(message).toContain(`/${DoctorService.typeName}/${method.name}:`);
    expect(message).not.toContain("PatientService");
  });

  it("refuses policies that cannot be enforced as written", () => {
    const service = serviceWithPolicies({
      Guardian: { roles: [ActorRole.GUARDIAN], patientField: "name" },
      NoField: { roles: [ActorRole.PATIENT], patientField: "nope" },
      NotString: { roles: [ActorRole.PATIENT], patientField: "page_size" },
      Repeated: { roles: [ActorRole.PATIENT], patientField: "names" },
      ThroughString: { roles: [ActorRole.PATIENT], patientField: "name.inner" },
      ProxyWithoutField: { roles: [ActorRole.PATIENT], proxyGrant: FamilyGrant.VIEW_RECORDS },
      ProxyWithoutPatient: { roles: [ActorRole.ADMIN], patientField: "name", proxyGrant: FamilyGrant.VIEW_RECORDS },
      AnonymousWithRoles: { anonymous: true, roles: [ActorRole.ADMIN] },
      Nobody: { audit: AuditAction.READ },
      Fine: { roles: [ActorRole.PATIENT], patientField: "inner.name", proxyGrant: FamilyGrant.VIEW_RECORDS },
      Missing: undefined,
    });
    const message = thrownBy(() => requirePolicies([service]));
    const lines = message.split("\n").slice(1);
    expect(lines.map((line) => line.trim().split(":")[0])).toEqual(
      [
        "Guardian",
        "NoField",
        "NotString",
        "Repeated",
        "ThroughString",
        "ProxyWithoutField",
        "ProxyWithoutPatient",
        "AnonymousWithRoles",
        "Nobody",
        "Missing",
      ].map((name) => `/test.v1.TestService/${name}`),
    );
    expect(message).toContain("ACTOR_ROLE_GUARDIAN");
    expect(message).toContain("no (telemed.patient.v1.access) option");

    const fine = policy(service.methods.find((method) => method.name === "Fine") as DescMethod);
    const input = service.methods[0]?.input as DescMethod["input"];
    expect(fine.readPatientId(create(input, { inner: { name: "patients/p7/records/r1" } } as never))).toBe("p7");
    expect(fine.readPatientId(create(input, {}))).toBeUndefined();
  });
});

/** The message of the error `fn` throws; fails the test when it throws none. */
function thrownBy(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected an error");
}

/** A service whose methods carry the given policies (undefined: no option), taking `test.v1.Req`. */
function serviceWithPolicies(
  policies: Record<string, MessageInitShape<typeof AccessPolicySchema> | undefined>,
): DescService {
  const { STRING, INT32, MESSAGE } = FieldDescriptorProto_Type;
  const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;
  const file = create(FileDescriptorProtoSchema, {
    name: "test/v1/policy_test.proto",
    package: "test.v1",
    syntax: "proto3",
    messageType: [
      { name: "Inner", field: [{ name: "name", number: 1, type: STRING, label: OPTIONAL }] },
      {
        name: "Req",
        field: [
          { name: "name", number: 1, type: STRING, label: OPTIONAL },
          { name: "inner", number: 2, type: MESSAGE, typeName: ".test.v1.Inner", label: OPTIONAL },
          { name: "page_size", number: 3, type: INT32, label: OPTIONAL },
          { name: "names", number: 4, type: STRING, label: REPEATED },
        ],
      },
      { name: "Resp" },
    ],
    service: [
      {
        name: "TestService",
        method: Object.entries(policies).map(([name, init]) => {
          const options = create(MethodOptionsSchema);
          if (init !== undefined) setExtension(options, access, create(AccessPolicySchema, init));
          return { name, inputType: ".test.v1.Req", outputType: ".test.v1.Resp", options };
        }),
      },
    ],
  });
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: [file] }));
  return registry.getService("test.v1.TestService") as DescService;
}

type ReflectionRequest = MessageInitShape<typeof ServerReflectionRequestSchema>;

/**
 * Every service the server lists through gRPC reflection v1, rebuilt from the
 * FileDescriptorProtos it answers with (one stream, so each import arrives once).
 */
async function servicesByReflection(client: grpc.Client): Promise<DescService[]> {
  const call = client.makeBidiStreamRequest(
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    (request: ReflectionRequest) =>
      Buffer.from(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, request))),
    (bytes: Buffer) => fromBinary(ServerReflectionResponseSchema, bytes),
  );
  const waiting: ((response: ServerReflectionResponse) => void)[] = [];
  call.on("data", (response: ServerReflectionResponse) => waiting.shift()?.(response));
  call.on("error", () => {}); // cancelled by `end` below, after the last answer
  const ask = (request: ReflectionRequest) =>
    new Promise<ServerReflectionResponse>((resolve) => {
      waiting.push(resolve);
      call.write(request);
    });
  try {
    const listed = await ask({ messageRequest: { case: "listServices", value: "" } });
    if (listed.messageResponse.case !== "listServicesResponse") throw new Error(`got ${listed.messageResponse.case}`);
    const names = listed.messageResponse.value.service.map((service) => service.name);
    const files = new Map<string, FileDescriptorProto>();
    for (const name of names) {
      const answer = await ask({ messageRequest: { case: "fileContainingSymbol", value: name } });
      if (answer.messageResponse.case !== "fileDescriptorResponse") throw new Error(`${name}: no descriptor`);
      for (const bytes of answer.messageResponse.value.fileDescriptorProto) {
        const proto = fromBinary(FileDescriptorProtoSchema, bytes);
        files.set(proto.name, proto);
      }
    }
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files) }));
    return names.map((name) => {
      const service = registry.getService(name);
      if (service === undefined) throw new Error(`${name} is listed but not described`);
      return service;
    });
  } finally {
    call.end();
  }
}

/** The files ordered so each comes after its imports, as a FileDescriptorSet must be. */
function importsFirst(byName: ReadonlyMap<string, FileDescriptorProto>): FileDescriptorProto[] {
  const ordered = new Set<FileDescriptorProto>();
  const visit = (name: string) => {
    const proto = byName.get(name);
    if (proto === undefined) throw new Error(`import ${name} missing from the reflection answers`);
    if (ordered.has(proto)) return;
    proto.dependency.forEach(visit);
    ordered.add(proto);
  };
  for (const name of byName.keys()) visit(name);
  return [...ordered];
}

/** Calls `method` with an empty request and no token; resolves with the status code. */
function anonymousCall(client: grpc.Client, method: DescMethod): Promise<grpc.status> {
  const path = `/${method.parent.typeName}/${method.name}`;
  const serialize = (message: Message) => Buffer.from(toBinary(method.input, message));
  const deserialize = (bytes: Buffer) => bytes;
  const options = { deadline: Date.now() + 10_000 };
  const request = create(method.input);
  return new Promise((resolve) => {
    if (method.methodKind === "unary") {
      client.makeUnaryRequest(path, serialize, deserialize, request, new grpc.Metadata(), options, (error) =>
        resolve(error ? error.code : grpc.status.OK),
      );
    } else if (method.methodKind === "server_streaming") {
      const call = client.makeServerStreamRequest(path, serialize, deserialize, request, new grpc.Metadata(), options);
      call.on("data", () => {});
      call.on("error", () => {});
      call.on("status", (status) => resolve(status.code));
    } else {
      throw new Error(`${path}: a ${method.methodKind} method cannot be checked here`);
    }
  });
}
