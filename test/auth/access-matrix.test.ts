import { create, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { FamilyGrant, FamilyRelationship } from "../../gen/telemed/patient/v1/family_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { BillingService } from "../../gen/telemed/patient/v1/billing_service_pb.js";
import { ConsultationService } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import { EmergencyService } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { InsightService } from "../../gen/telemed/patient/v1/insight_service_pb.js";
import { NotificationService } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { RecordService } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { policyOf, type ResolvedPolicy } from "../../src/auth/access-policy.ts";
import type { PrincipalRole } from "../../src/auth/principal.ts";
import { bearer, signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

/**
 * The access matrix (issue 3): every RPC of every served service, called by each kind
 * of caller against the live server. The expected cell comes from the method's
 * declared policy (the proto option); the actual one from the wire. A denial is
 * UNAUTHENTICATED, PERMISSION_DENIED, or NOT_FOUND with reason PATIENT_NOT_FOUND
 * (the patient-scope refusal); anything else (success, validation errors on the
 * deliberately minimal requests, UNIMPLEMENTED of later issues) means the access
 * decision let the call through.
 */
type Caller =
  | "anonymous"
  | "owner"
  | "other patient"
  | "guardian with the grant"
  | "guardian without the grant"
  | "doctor"
  | "paramedic"
  | "admin";
const callers: Caller[] = [
  "anonymous",
  "owner",
  "other patient",
  "guardian with the grant",
  "guardian without the grant",
  "doctor",
  "paramedic",
  "admin",
];
/** Every service of the Patient Service's own contract (test/auth/access-policy.test.ts checks the server serves exactly these). */
const servedServices = [
  AuthService,
  PatientService,
  FamilyService,
  AuditService,
  ConsultationService,
  NotificationService,
  EmergencyService,
  RecordService,
  InsightService,
  BillingService,
];
const grants = [
  FamilyGrant.VIEW_RECORDS,
  FamilyGrant.BOOK_CONSULTATIONS,
  FamilyGrant.PAY_BILLS,
  FamilyGrant.REQUEST_EMERGENCIES,
  FamilyGrant.MANAGE_PROFILE,
];

let t: TestApp;
let owner: TestSession;
let other: TestSession;
let admin: TestSession;
let doctor: TestSession;
let paramedic: TestSession;
let guardianWithAll: TestSession;
/** For each grant, a guardian of the owner holding every grant but that one. */
const guardianWithout = new Map<FamilyGrant, TestSession>();

function family(session: TestSession): Client<typeof FamilyService> {
  return createClient(
    FamilyService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
  );
}

async function linkAsGuardian(guardian: TestSession, linkGrants: FamilyGrant[]): Promise<void> {
  const created = await family(guardian).createFamilyLink({
    parent: guardian.patient,
    familyLink: { dependent: owner.patient, relationship: FamilyRelationship.SPOUSE_OR_PARTNER, grants: linkGrants },
    requestId: randomUUID(),
  });
  await family(owner).acceptFamilyLink({ name: created.familyLink?.name ?? "" });
}

beforeAll(async () => {
  t = await startTestApp();
  [owner, other, admin, doctor, paramedic, guardianWithAll] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    staffSession(t, "admin"),
    staffSession(t, "doctor"),
    staffSession(t, "paramedic"),
    signUpPatient(t),
  ]);
  await linkAsGuardian(guardianWithAll, grants);
  for (const grant of grants) {
    const guardian = await signUpPatient(t);
    await linkAsGuardian(
      guardian,
      grants.filter((g) => g !== grant),
    );
    guardianWithout.set(grant, guardian);
  }
}, 120_000);
afterAll(async () => {
  await t?.close();
});

function sessionOf(caller: Caller, policy: ResolvedPolicy): TestSession | undefined {
  switch (caller) {
    case "anonymous":
      return undefined;
    case "owner":
      return owner;
    case "other patient":
      return other;
    case "guardian with the grant":
      return guardianWithAll;
    case "guardian without the grant":
      return guardianWithout.get(policy.proxyGrant ?? FamilyGrant.MANAGE_PROFILE);
    case "doctor":
      return doctor;
    case "paramedic":
      return paramedic;
    case "admin":
      return admin;
  }
}

const roleOf: Record<Exclude<Caller, "anonymous">, PrincipalRole> = {
  owner: "patient",
  "other patient": "patient",
  "guardian with the grant": "patient",
  "guardian without the grant": "patient",
  doctor: "doctor",
  paramedic: "paramedic",
  admin: "admin",
};

/** What the policy says this caller may do, computed independently of the server's code. */
function expectedAllowed(policy: ResolvedPolicy, caller: Caller): boolean {
  if (policy.anonymous) return true;
  if (caller === "anonymous") return false;
  if (!policy.roles.has(roleOf[caller])) return false;
  if (roleOf[caller] !== "patient" || policy.patientField.length === 0) return true;
  if (caller === "owner") return true;
  if (caller === "guardian with the grant") return policy.proxyGrant !== undefined;
  return false;
}

/**
 * The smallest request that names the owner where the policy looks. The name gets a
 * suffix that fails validation after the access decision, so allowed calls change
 * nothing (no profile is deleted by the matrix).
 */
function requestFor(method: DescMethod, policy: ResolvedPolicy): Message {
  const init: Record<string, unknown> = {};
  if (policy.patientField.length > 0) {
    let schema: DescMessage = method.input;
    let target = init;
    policy.patientField.forEach((name, index) => {
      const field = schema.fields.find((f) => f.name === name);
      if (field === undefined) throw new Error(`${method.name}: no field ${name}`);
      if (index === policy.patientField.length - 1) {
        target[field.localName] = `${owner.patient}/matrix/!`;
      } else {
        const nested: Record<string, unknown> = {};
        target[field.localName] = nested;
        target = nested;
        schema = field.message as DescMessage;
      }
    });
  }
  // An empty LogOut is valid and would end the caller's session mid-matrix.
  if (method.name === "LogOut") init.refreshToken = "x".repeat(600);
  return create(method.input, init as never);
}

async function outcome(method: DescMethod, request: Message, session: TestSession | undefined): Promise<string> {
  const client = createClient(
    method.parent,
    createConnectTransport({
      baseUrl: t.baseUrl,
      httpVersion: "1.1",
      interceptors: session === undefined ? [] : [bearer(session.accessToken)],
    }),
  ) as unknown as Record<string, (request: Message) => unknown>;
  const call = client[method.localName] as (request: Message) => unknown;
  try {
    const result = call(request);
    if (method.methodKind === "server_streaming") {
      for await (const _ of result as AsyncIterable<unknown>) break;
    } else {
      await result;
    }
    return "OK";
  } catch (error) {
    const connectError = ConnectError.from(error);
    const reason = connectError.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
    return `${Code[connectError.code]}${reason ? `/${reason}` : ""}`;
  }
}

function isDenial(result: string): boolean {
  return (
    result.startsWith("Unauthenticated") ||
    result.startsWith("PermissionDenied") ||
    result === "NotFound/PATIENT_NOT_FOUND"
  );
}

describe("TST-PT004-2 the access matrix: every RPC x every kind of caller, checked on the live server", () => {
  it("answers every cell as the method's declared policy says", async () => {
    const methods = servedServices.flatMap((service) => service.methods);
    expect(methods.length).toBeGreaterThan(80);
    const mismatches: string[] = [];
    let cells = 0;
    for (const method of methods) {
      const policy = policyOf(method) as ResolvedPolicy;
      const request = requestFor(method, policy);
      for (const caller of callers) {
        const result = await outcome(method, request, sessionOf(caller, policy));
        cells++;
        const allowed = !isDenial(result);
        if (allowed !== expectedAllowed(policy, caller)) {
          mismatches.push(
            `${method.parent.name}.${method.name} as ${caller}: got ${result}, expected ${expectedAllowed(policy, caller) ? "allowed" : "denied"}`,
          );
        }
        // Denials answer the same way everywhere: no data, no hint of the resource.
        if (caller === "anonymous" && !policy.anonymous) expect(result).toMatch(/^Unauthenticated/);
      }
    }
    expect(mismatches).toEqual([]);
    expect(cells).toBe(methods.length * callers.length);
    // The owner's session survived the matrix (nothing allowed it to change the owner's state).
    expect(
      await outcome(
        methods.find((m) => m.name === "GetPatient") as DescMethod,
        create((methods.find((m) => m.name === "GetPatient") as DescMethod).input, { name: owner.patient } as never),
        owner,
      ),
    ).toBe("OK");
  }, 180_000);
});
