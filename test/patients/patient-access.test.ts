import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuditAction, AuditOutcome, type AccessEvent } from "../../gen/telemed/patient/v1/audit_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

let t: TestApp;
/** The profile under test; `other` is a second, unrelated patient. */
let owner: TestSession;
let other: TestSession;
let admin: TestSession;
let doctor: TestSession;
beforeAll(async () => {
  t = await startTestApp();
  [owner, other, admin, doctor] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    staffSession(t, "admin"),
    staffSession(t, "doctor"),
  ]);
});
afterAll(async () => {
  await t?.close();
});

const missing = `patients/${randomUUID()}`;

function patients(session?: TestSession): Client<typeof PatientService> {
  const interceptors = session === undefined ? [] : [session.interceptor];
  return createClient(PatientService, createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors }));
}

/** A fresh request id, sent as `x-request-id`, so the call's audit entry can be found. */
function tagged(): { requestId: string; headers: Record<string, string> } {
  const requestId = randomUUID();
  return { requestId, headers: { "x-request-id": requestId } };
}

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => ConnectError.from(error),
  );
  if (outcome === undefined) throw new Error("the call succeeded");
  return outcome;
}

/**
 * The entry of `requestId` in `subject`'s access view, read through
 * AuditService.ListAccessEvents by `viewer` (the patient themself unless said otherwise).
 */
async function accessEvent(
  subject: TestSession,
  requestId: string,
  viewer = subject,
): Promise<AccessEvent | undefined> {
  const audit = createClient(
    AuditService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [viewer.interceptor] }),
  );
  const { accessEvents } = await audit.listAccessEvents({ parent: subject.patient, includeOwn: true, pageSize: 200 });
  return accessEvents.find((event) => event.requestId === requestId);
}

describe("TST-PT004-2 a patient's profile is theirs alone, and every access to it is in their access view", () => {
  it("a patient reads and updates their own profile; both are in their access view", async () => {
    const read = tagged();
    const { patient } = await patients(owner).getPatient({ name: owner.patient }, { headers: read.headers });
    expect(patient?.contact?.email).toBe(owner.email);
    const update = tagged();
    const { patient: updated } = await patients(owner).updatePatient(
      {
        patient: { name: owner.patient, etag: patient?.etag, upiId: "owner.new@okaxis" },
        updateMask: { paths: ["upi_id"] },
      },
      { headers: update.headers },
    );
    expect(updated?.upiId).toBe("owner.new@okaxis");

    expect(await accessEvent(owner, read.requestId)).toMatchObject({
      actor: { principal: owner.patient, role: ActorRole.PATIENT },
      action: AuditAction.READ,
      resource: owner.patient,
      outcome: AuditOutcome.SUCCESS,
      proxy: false,
    });
    expect(await accessEvent(owner, update.requestId)).toMatchObject({
      actor: { principal: owner.patient, role: ActorRole.PATIENT },
      action: AuditAction.UPDATE,
      outcome: AuditOutcome.SUCCESS,
    });
  });

  it("another patient's id answers NOT_FOUND exactly as a missing one, reveals nothing and changes nothing", async () => {
    const { patient: before } = await patients(owner).getPatient({ name: owner.patient });
    const absent = await refusal(patients(other).getPatient({ name: missing }));
    expect(absent.code).toBe(Code.NotFound);

    const read = tagged();
    const update = tagged();
    const remove = tagged();
    const refusals = [
      await refusal(patients(other).getPatient({ name: owner.patient }, { headers: read.headers })),
      await refusal(
        patients(other).updatePatient(
          { patient: { name: owner.patient, upiId: "thief@okaxis" }, updateMask: { paths: ["upi_id"] } },
          { headers: update.headers },
        ),
      ),
      await refusal(patients(other).deletePatient({ name: owner.patient }, { headers: remove.headers })),
    ];
    for (const error of refusals) {
      // Same code, message and details as for a profile that does not exist.
      expect(error.code).toBe(Code.NotFound);
      expect(error.rawMessage).toBe(absent.rawMessage);
      expect(error.findDetails(ErrorInfoSchema)).toEqual(absent.findDetails(ErrorInfoSchema));
      const told = JSON.stringify([error.rawMessage, error.findDetails(ErrorInfoSchema), [...error.metadata]]);
      for (const secret of [owner.email, owner.patientId, "Asha", "Rao"]) expect(told).not.toContain(secret);
    }
    // Nothing changed: the profile is there, as it was.
    const { patient: after } = await patients(owner).getPatient({ name: owner.patient });
    expect(after?.etag).toBe(before?.etag);
    expect(after?.upiId).toBe(before?.upiId);

    // Each attempt is in the owner's access view, as a denial by another patient whom it does not name.
    for (const [{ requestId }, action] of [
      [read, AuditAction.READ],
      [update, AuditAction.UPDATE],
      [remove, AuditAction.DELETE],
    ] as const) {
      expect.soft(await accessEvent(owner, requestId)).toMatchObject({
        actor: { principal: "", role: ActorRole.PATIENT, displayName: "another patient" },
        action,
        resource: owner.patient,
        outcome: AuditOutcome.DENIED,
      });
    }
  });

  it("a patient may neither create nor list profiles", async () => {
    expect((await refusal(patients(owner).listPatients({}))).code).toBe(Code.PermissionDenied);
    expect((await refusal(patients(owner).createPatient({}))).code).toBe(Code.PermissionDenied);
  });

  it("an admin reads and updates any profile; the owner sees both in their access view", async () => {
    const read = tagged();
    const { patient } = await patients(admin).getPatient({ name: owner.patient }, { headers: read.headers });
    expect(patient?.contact?.email).toBe(owner.email);
    const update = tagged();
    const { patient: updated } = await patients(admin).updatePatient(
      {
        patient: { name: owner.patient, etag: patient?.etag, preferredLanguage: "hi-IN" },
        updateMask: { paths: ["preferred_language"] },
      },
      { headers: update.headers },
    );
    expect(updated?.preferredLanguage).toBe("hi-IN");

    const events = [await accessEvent(owner, read.requestId), await accessEvent(owner, update.requestId)];
    expect(events).toMatchObject([
      {
        actor: { role: ActorRole.ADMIN },
        action: AuditAction.READ,
        resource: owner.patient,
        outcome: AuditOutcome.SUCCESS,
      },
      {
        actor: { role: ActorRole.ADMIN },
        action: AuditAction.UPDATE,
        resource: owner.patient,
        outcome: AuditOutcome.SUCCESS,
      },
    ]);
    for (const event of events) expect(event?.actor?.principal).toMatch(/^admins\//);
    // The owner's default view (others' accesses only) shows the admin's too.
    const audit = createClient(
      AuditService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [owner.interceptor] }),
    );
    const { accessEvents } = await audit.listAccessEvents({ parent: owner.patient, actorRoles: [ActorRole.ADMIN] });
    expect(accessEvents.map((event) => event.requestId)).toEqual(
      expect.arrayContaining([read.requestId, update.requestId]),
    );
  });

  it("an anonymous caller is UNAUTHENTICATED, and the attempt is in the owner's access view", async () => {
    const read = tagged();
    const error = await refusal(patients().getPatient({ name: owner.patient }, { headers: read.headers }));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(await accessEvent(owner, read.requestId)).toMatchObject({
      actor: { principal: "", role: ActorRole.UNSPECIFIED },
      action: AuditAction.READ,
      resource: owner.patient,
      outcome: AuditOutcome.DENIED,
    });
  });

  it("a doctor is PERMISSION_DENIED on GetPatient, and the attempt is in the owner's access view", async () => {
    const read = tagged();
    const error = await refusal(patients(doctor).getPatient({ name: owner.patient }, { headers: read.headers }));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(await accessEvent(owner, read.requestId)).toMatchObject({
      actor: { principal: expect.stringMatching(/^doctors\//), role: ActorRole.DOCTOR },
      action: AuditAction.READ,
      resource: owner.patient,
      outcome: AuditOutcome.DENIED,
    });
  });

  it("a patient deletes their own profile: gone for everyone, their tokens end, the deletion is audited", async () => {
    const leaver = await signUpPatient(t);
    const remove = tagged();
    await patients(leaver).deletePatient({ name: leaver.patient }, { headers: remove.headers });
    expect((await refusal(patients(admin).getPatient({ name: leaver.patient }))).code).toBe(Code.NotFound);
    // A deleted profile logs out everywhere, so its own access view is read by an admin.
    expect((await refusal(patients(leaver).getPatient({ name: leaver.patient }))).code).toBe(Code.Unauthenticated);
    expect(await accessEvent(leaver, remove.requestId, admin)).toMatchObject({
      actor: { principal: leaver.patient, role: ActorRole.PATIENT },
      action: AuditAction.DELETE,
      resource: leaver.patient,
      outcome: AuditOutcome.SUCCESS,
    });
  });
});
