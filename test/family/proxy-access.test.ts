import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/telemed/patient/v1/audit_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { FamilyGrant, FamilyRelationship } from "../../gen/telemed/patient/v1/family_pb.js";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

function client<S extends typeof PatientService | typeof FamilyService | typeof AuditService>(
  service: S,
  session: TestSession,
): Client<S> {
  return createClient(
    service,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
  );
}

async function linked(grants: FamilyGrant[]) {
  const [guardian, dependent] = await Promise.all([signUpPatient(t), signUpPatient(t)]);
  const { familyLink } = await client(FamilyService, guardian).createFamilyLink({
    parent: guardian.patient,
    familyLink: { dependent: dependent.patient, relationship: FamilyRelationship.PARENT, grants },
    requestId: randomUUID(),
  });
  const name = familyLink?.name ?? "";
  await client(FamilyService, dependent).acceptFamilyLink({ name });
  return { guardian, dependent, link: name };
}

describe("acting for a family member", () => {
  it("a guardian with the grant reads the dependent's profile, and the audit log says it acted as proxy", async () => {
    const { guardian, dependent } = await linked([FamilyGrant.MANAGE_PROFILE]);
    const { patient } = await client(PatientService, guardian).getPatient({ name: dependent.patient });
    expect(patient?.name).toBe(dependent.patient);
    const { accessEvents } = await client(AuditService, dependent).listAccessEvents({ parent: dependent.patient });
    const proxyRead = accessEvents.find((event) => event.actor?.principal === guardian.patient);
    expect(proxyRead?.proxy).toBe(true);
    expect(proxyRead?.actor?.role).toBe(ActorRole.GUARDIAN);
    expect(proxyRead?.action).toBe(AuditAction.READ);
  });

  it("a link without the grant opens nothing: NOT_FOUND, as for a stranger", async () => {
    const { guardian, dependent } = await linked([FamilyGrant.VIEW_RECORDS]);
    const error = await client(PatientService, guardian)
      .getPatient({ name: dependent.patient })
      .catch((thrown: unknown) => ConnectError.from(thrown));
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("revoking the link takes effect on the guardian's next call, with the same unexpired token", async () => {
    const { guardian, dependent, link } = await linked([FamilyGrant.MANAGE_PROFILE]);
    await client(PatientService, guardian).getPatient({ name: dependent.patient });
    await client(FamilyService, dependent).revokeFamilyLink({ name: link, reason: "no longer needed" });
    const error = await client(PatientService, guardian)
      .getPatient({ name: dependent.patient })
      .catch((thrown: unknown) => ConnectError.from(thrown));
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("a guardian cannot read the dependent's access view (no proxy there): their own only", async () => {
    const { guardian, dependent } = await linked([FamilyGrant.MANAGE_PROFILE, FamilyGrant.VIEW_RECORDS]);
    const error = await client(AuditService, guardian)
      .listAccessEvents({ parent: dependent.patient })
      .catch((thrown: unknown) => ConnectError.from(thrown));
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });
});
