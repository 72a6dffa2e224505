import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type FamilyGrant, FamilyRelationship } from "../../gen/telemed/patient/v1/family_pb.js";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { signUpPatient, type TestSession } from "./auth-fixtures.ts";
import type { TestApp } from "./test-app.ts";

/** A new patient who became `dependent`'s guardian with `grants`: the link created and accepted through FamilyService. */
export async function guardianOf(t: TestApp, dependent: TestSession, grants: FamilyGrant[]): Promise<TestSession> {
  const guardian = await signUpPatient(t);
  const family = (session: TestSession) =>
    createClient(
      FamilyService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
    );
  const { familyLink } = await family(guardian).createFamilyLink({
    parent: guardian.patient,
    familyLink: { dependent: dependent.patient, relationship: FamilyRelationship.PARENT, grants },
    requestId: randomUUID(),
  });
  await family(dependent).acceptFamilyLink({ name: familyLink?.name ?? "" });
  return guardian;
}
