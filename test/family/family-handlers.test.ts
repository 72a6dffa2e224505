import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  FamilyConsent_Method,
  FamilyGrant,
  FamilyLink_State,
  FamilyLinkRole,
  FamilyRelationship,
} from "../../gen/telemed/patient/v1/family_pb.js";
import { CreateFamilyLinkRequestSchema, FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { CallAudit, callAuditKey } from "../../src/audit/call-audit.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import { FamilyAccess } from "../../src/family/family-access.ts";
import { familyService } from "../../src/family/family-handlers.ts";
import type { Patient } from "../../src/patients/patient.ts";
import { PatientRepository } from "../../src/patients/patient-repository.ts";
import {
  adminPrincipal,
  doctorPrincipal,
  handlerContext,
  patientPrincipal as asPatient,
} from "../support/handler-context.ts";
import { testPatientSealer } from "../support/test-crypto.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { dependentJson, familyCaller, ManualClock, profile, RecordingAudit } from "./family-fixtures.ts";

const start = "2026-11-28T10:00:00.000Z";
const { VIEW_RECORDS, BOOK_CONSULTATIONS, PAY_BILLS } = FamilyGrant;

let db: TestDatabase;
let orm: Orm;
let patients: PatientRepository;
let clock: ManualClock;
let audit: RecordingAudit;
let access: FamilyAccess;
let call: ReturnType<typeof familyCaller>;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 4 });
  patients = new PatientRepository(orm, testPatientSealer());
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

beforeEach(() => {
  clock = new ManualClock(start);
  audit = new RecordingAudit();
  access = new FamilyAccess(() => orm.em.fork(), clock);
  call = familyCaller({ em: () => orm.em.fork(), patients, clock, audit });
});

/** An adult patient with their own profile (born 1985). */
function adult(email?: string): Promise<Patient> {
  return patients.create(profile({ year: 1985, month: 6, day: 15 }, email));
}

/** A guardian's ACTIVE link to a new minor dependent, born on `birthDate`. */
async function dependentOf(guardian: Patient, birthDate = { year: 2015, month: 3, day: 10 }) {
  return call(asPatient(guardian.id), "createDependent", {
    parent: `patients/${guardian.id}`,
    dependent: dependentJson(birthDate),
    relationship: FamilyRelationship.CHILD,
    grants: [VIEW_RECORDS, BOOK_CONSULTATIONS],
    requestId: randomUUID(),
  });
}

/** A PENDING_CONSENT invitation from `guardian` to `dependent` by resource name. */
async function invite(guardian: Patient, dependent: Patient, grants = [VIEW_RECORDS]) {
  const { familyLink } = await call(asPatient(guardian.id), "createFamilyLink", {
    parent: `patients/${guardian.id}`,
    familyLink: { dependent: `patients/${dependent.id}`, relationship: FamilyRelationship.PARENT, grants },
    requestId: randomUUID(),
  });
  return familyLink!;
}

describe("CreateDependent: a guardian creates a minor's profile", () => {
  it("creates the profile and an ACTIVE link that ends at the age of majority", async () => {
    const guardian = await adult();
    const { dependent, familyLink } = await dependentOf(guardian, { year: 2015, month: 3, day: 10 });
    const dependentId = dependent!.name.slice("patients/".length);
    expect((await patients.get(dependentId)).birthDate).toEqual({ year: 2015, month: 3, day: 10 });
    expect(familyLink).toMatchObject({
      name: expect.stringMatching(new RegExp(`^patients/${guardian.id}/familyLinks/[0-9a-f-]{36}$`)),
      guardian: `patients/${guardian.id}`,
      dependent: `patients/${dependentId}`,
      dependentDisplayName: "Anu Iyer",
      dependentIsMinor: true,
      state: FamilyLink_State.ACTIVE,
      relationship: FamilyRelationship.CHILD,
      grants: [VIEW_RECORDS, BOOK_CONSULTATIONS],
      etag: "v1",
    });
    expect(familyLink?.consent?.method).toBe(FamilyConsent_Method.GUARDIAN_FOR_MINOR);
    expect(familyLink?.consent?.actor).toMatchObject({
      principal: `patients/${guardian.id}`,
      role: ActorRole.GUARDIAN,
    });
    expect(timestampDate(familyLink!.endTime!).toISOString()).toBe("2033-03-10T00:00:00.000Z");
    expect(await access.grantsFor(guardian.id, dependentId)).toEqual(new Set([VIEW_RECORDS, BOOK_CONSULTATIONS]));
  });

  it("refuses an adult dependent with FAILED_PRECONDITION: adults must be invited", async () => {
    const guardian = await adult();
    const attempt = dependentOf(guardian, { year: 2008, month: 11, day: 28 }); // 18 today
    await expect(attempt).rejects.toMatchObject({ kind: "failed-precondition", reason: "DEPENDENT_NOT_A_MINOR" });
    expect(audit.drafts).toEqual([]);
  });

  it("uses the configured age of majority", async () => {
    const call21 = familyCaller({ em: () => orm.em.fork(), patients, clock, audit, ageOfMajority: 21 });
    const guardian = await adult();
    const { familyLink } = await call21(asPatient(guardian.id), "createDependent", {
      parent: `patients/${guardian.id}`,
      dependent: dependentJson({ year: 2007, month: 1, day: 31 }), // 19
      relationship: FamilyRelationship.CHILD,
      grants: [VIEW_RECORDS],
      requestId: randomUUID(),
    });
    expect(timestampDate(familyLink!.endTime!).toISOString()).toBe("2028-01-31T00:00:00.000Z");
  });

  it("replays a retried create with the same request_id (AIP-155), also when both arrive at once", async () => {
    const guardian = await adult();
    const request = {
      parent: `patients/${guardian.id}`,
      dependent: dependentJson({ year: 2016, month: 1, day: 1 }),
      relationship: FamilyRelationship.CHILD,
      grants: [VIEW_RECORDS],
      requestId: randomUUID(),
    };
    const first = await call(asPatient(guardian.id), "createDependent", request);
    const retry = await call(asPatient(guardian.id), "createDependent", request);
    expect(retry.dependent?.name).toBe(first.dependent?.name);
    expect(retry.familyLink?.name).toBe(first.familyLink?.name);

    const together = {
      ...request,
      dependent: dependentJson({ year: 2016, month: 1, day: 1 }),
      requestId: randomUUID(),
    };
    const [a, b] = await Promise.all([
      call(asPatient(guardian.id), "createDependent", together),
      call(asPatient(guardian.id), "createDependent", together),
    ]);
    expect(a.familyLink?.name).toBe(b.familyLink?.name);
    expect(a.dependent?.name).toBe(b.dependent?.name);
    const { familyLinks } = await call(asPatient(guardian.id), "listFamilyLinks", {
      parent: `patients/${guardian.id}`,
    });
    expect(familyLinks).toHaveLength(2);
  });

  it("refuses an email another patient has, and stores no link", async () => {
    const [guardian, other] = [await adult(), await adult()];
    const attempt = call(asPatient(guardian.id), "createDependent", {
      parent: `patients/${guardian.id}`,
      dependent: dependentJson({ year: 2016, month: 1, day: 1 }, other.contact.email),
      relationship: FamilyRelationship.CHILD,
      grants: [VIEW_RECORDS],
      requestId: randomUUID(),
    });
    await expect(attempt).rejects.toMatchObject({ kind: "already-exists", reason: "EMAIL_ALREADY_REGISTERED" });
    const { familyLinks } = await call(asPatient(guardian.id), "listFamilyLinks", {
      parent: `patients/${guardian.id}`,
    });
    expect(familyLinks).toEqual([]);
  });

  it("refuses a request_id reused by another guardian", async () => {
    const [guardian, other] = [await adult(), await adult()];
    const requestId = randomUUID();
    const request = (g: Patient) => ({
      parent: `patients/${g.id}`,
      dependent: dependentJson({ year: 2016, month: 1, day: 1 }),
      relationship: FamilyRelationship.CHILD,
      grants: [VIEW_RECORDS],
      requestId,
    });
    await call(asPatient(guardian.id), "createDependent", request(guardian));
    await expect(call(asPatient(other.id), "createDependent", request(other))).rejects.toMatchObject({
      reason: "REQUEST_ID_REUSED",
    });
  });

  it("records the profile and the link in the audit log, in the same transaction", async () => {
    const guardian = await adult();
    const requestId = randomUUID();
    const { dependent, familyLink } = await call(
      asPatient(guardian.id),
      "createDependent",
      {
        parent: `patients/${guardian.id}`,
        dependent: dependentJson({ year: 2016, month: 1, day: 1 }),
        relationship: FamilyRelationship.CHILD,
        grants: [VIEW_RECORDS],
        requestId: randomUUID(),
      },
      { requestId, clientAddress: "203.0.113.7" },
    );
    const common = {
      actor: `patients/${guardian.id}`,
      actorRole: ActorRole.PATIENT,
      proxy: false,
      action: AuditAction.CREATE,
      outcome: AuditOutcome.SUCCESS,
      rpc: "/telemed.patient.v1.FamilyService/CreateDependent",
      requestId,
      clientAddress: "203.0.113.7",
      reason: "",
    };
    expect(audit.drafts).toEqual([
      { ...common, resource: dependent?.name, subjectPatientId: dependent?.name.slice("patients/".length) },
      { ...common, resource: familyLink?.name, subjectPatientId: guardian.id },
    ]);
    expect(audit.inTransaction).toEqual([true]);
  });

  it("stores neither profile nor link when the audit entry cannot be written", async () => {
    const guardian = await adult();
    const email = `rollback.${randomUUID()}@example.com`;
    audit.failing = true;
    const attempt = call(asPatient(guardian.id), "createDependent", {
      parent: `patients/${guardian.id}`,
      dependent: dependentJson({ year: 2016, month: 1, day: 1 }, email),
      relationship: FamilyRelationship.CHILD,
      grants: [VIEW_RECORDS],
      requestId: randomUUID(),
    });
    await expect(attempt).rejects.toThrow("the audit log is unavailable");
    audit.failing = false;
    const { familyLinks } = await call(asPatient(guardian.id), "listFamilyLinks", {
      parent: `patients/${guardian.id}`,
    });
    expect(familyLinks).toEqual([]);
    const rows = await orm.em
      .fork()
      .execute(`select "id" from "patients" where "email_index" = ?`, [patients.emailIndexOf(email)]);
    expect(rows).toEqual([]);
  });
});

describe("audit of changes", () => {
  it("tells the pipeline's call audit that the change is recorded, once it has committed", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const method = FamilyService.method.createFamilyLink;
    const attempt = async () => {
      const context = handlerContext(method, { principal: asPatient(guardian.id) });
      const request = create(CreateFamilyLinkRequestSchema, {
        parent: `patients/${guardian.id}`,
        familyLink: {
          dependent: `patients/${dependent.id}`,
          relationship: FamilyRelationship.PARENT,
          grants: [PAY_BILLS],
        },
        requestId: randomUUID(),
      });
      const noSink = { record: async () => undefined, recordWithin: async () => undefined };
      const callAudit = new CallAudit(noSink, context, request, AuditAction.CREATE);
      context.values.set(callAuditKey, callAudit);
      const service = familyService({ em: () => orm.em.fork(), patients, clock, audit });
      await Promise.resolve(service.createFamilyLink?.(request, context)).catch(() => undefined);
      return callAudit.recorded;
    };
    audit.failing = true;
    expect(await attempt()).toBe(false);
    audit.failing = false;
    expect(await attempt()).toBe(true);
    expect(audit.drafts).toMatchObject([
      {
        action: AuditAction.CREATE,
        actor: `patients/${guardian.id}`,
        subjectPatientId: guardian.id,
        rpc: "/telemed.patient.v1.FamilyService/CreateFamilyLink",
      },
    ]);
  });

  it("records each state change as an UPDATE of the link, with the dependent as subject", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent);
    await call(asPatient(dependent.id), "acceptFamilyLink", { name: link.name });
    await call(asPatient(guardian.id), "revokeFamilyLink", { name: link.name });
    expect(audit.drafts.map((draft) => [draft.action, draft.rpc.split("/").pop(), draft.subjectPatientId])).toEqual([
      [AuditAction.CREATE, "CreateFamilyLink", guardian.id],
      [AuditAction.UPDATE, "AcceptFamilyLink", dependent.id],
      [AuditAction.UPDATE, "RevokeFamilyLink", dependent.id],
    ]);
    expect(audit.drafts.every((draft) => draft.resource === link.name)).toBe(true);
    expect(audit.inTransaction.every(Boolean)).toBe(true);
  });
});

describe("CreateFamilyLink by email: the invitee accepts", () => {
  it("answers the same for an email that belongs to a patient and one that does not", async () => {
    const guardian = await adult();
    const invitee = await adult();
    const ask = (email: string) =>
      call(asPatient(guardian.id), "createFamilyLink", {
        parent: `patients/${guardian.id}`,
        familyLink: { inviteeEmail: email, relationship: FamilyRelationship.SPOUSE_OR_PARTNER, grants: [PAY_BILLS] },
        requestId: randomUUID(),
      });
    const known = (await ask(invitee.contact.email.toUpperCase())).familyLink!;
    const unknown = (await ask(`nobody.${randomUUID()}@example.com`)).familyLink!;
    const shape = (link: typeof known) => ({ ...link, name: "", createTime: undefined, updateTime: undefined });
    expect(shape(known)).toEqual(shape(unknown));
    expect(known).toMatchObject({ state: FamilyLink_State.PENDING_CONSENT, dependent: "", dependentDisplayName: "" });
  });

  it("shows the invitation to the invitee, who accepts it with its etag", async () => {
    const guardian = await adult();
    const invitee = await adult();
    const { familyLink: invitation } = await call(asPatient(guardian.id), "createFamilyLink", {
      parent: `patients/${guardian.id}`,
      familyLink: {
        inviteeEmail: invitee.contact.email,
        relationship: FamilyRelationship.SPOUSE_OR_PARTNER,
        grants: [VIEW_RECORDS, PAY_BILLS],
      },
      requestId: randomUUID(),
    });
    const inbox = await call(asPatient(invitee.id), "listFamilyLinks", {
      parent: `patients/${invitee.id}`,
      role: FamilyLinkRole.DEPENDENT,
      states: [FamilyLink_State.PENDING_CONSENT],
    });
    expect(inbox.familyLinks.map((link) => link.name)).toEqual([invitation?.name]);
    const read = await call(asPatient(invitee.id), "getFamilyLink", { name: invitation!.name });
    expect(read.familyLink?.guardian).toBe(`patients/${guardian.id}`);
    expect(await access.grantsFor(guardian.id, invitee.id)).toEqual(new Set());

    const { familyLink: accepted } = await call(asPatient(invitee.id), "acceptFamilyLink", {
      name: invitation!.name,
      etag: read.familyLink!.etag,
    });
    expect(accepted).toMatchObject({
      state: FamilyLink_State.ACTIVE,
      dependent: `patients/${invitee.id}`,
      dependentDisplayName: "Meera Iyer",
      dependentIsMinor: false,
      etag: "v2",
    });
    expect(accepted?.endTime).toBeUndefined();
    expect(accepted?.consent).toMatchObject({
      method: FamilyConsent_Method.DEPENDENT_ACCEPTED,
      actor: { principal: `patients/${invitee.id}`, role: ActorRole.PATIENT },
    });
    expect(await access.grantsFor(guardian.id, invitee.id)).toEqual(new Set([VIEW_RECORDS, PAY_BILLS]));
    const guardianView = await call(asPatient(guardian.id), "getFamilyLink", { name: invitation!.name });
    expect(guardianView.familyLink?.dependent).toBe(`patients/${invitee.id}`);
    expect(audit.drafts.at(-1)).toMatchObject({
      action: AuditAction.UPDATE,
      actor: `patients/${invitee.id}`,
      subjectPatientId: invitee.id,
      resource: invitation?.name,
      rpc: "/telemed.patient.v1.FamilyService/AcceptFamilyLink",
    });
  });

  it("does not show an invitation by email to anyone else", async () => {
    const guardian = await adult();
    const stranger = await adult();
    const { familyLink } = await call(asPatient(guardian.id), "createFamilyLink", {
      parent: `patients/${guardian.id}`,
      familyLink: {
        inviteeEmail: `x.${randomUUID()}@example.com`,
        relationship: FamilyRelationship.SIBLING,
        grants: [PAY_BILLS],
      },
      requestId: randomUUID(),
    });
    const inbox = await call(asPatient(stranger.id), "listFamilyLinks", {
      parent: `patients/${stranger.id}`,
      role: FamilyLinkRole.DEPENDENT,
    });
    expect(inbox.familyLinks).toEqual([]);
    await expect(call(asPatient(stranger.id), "acceptFamilyLink", { name: familyLink!.name })).rejects.toMatchObject({
      kind: "not-found",
      reason: "FAMILY_LINK_NOT_FOUND",
    });
  });

  it("refuses an accept with a stale etag", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent);
    await call(asPatient(guardian.id), "updateFamilyLink", {
      familyLink: { name: link.name, grants: [VIEW_RECORDS, PAY_BILLS] },
      updateMask: { paths: ["grants"] },
    });
    await expect(
      call(asPatient(dependent.id), "acceptFamilyLink", { name: link.name, etag: link.etag }),
    ).rejects.toMatchObject({ kind: "aborted", reason: "ETAG_MISMATCH" });
  });

  it("replays a retried invitation with the same request_id", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const request = {
      parent: `patients/${guardian.id}`,
      familyLink: {
        dependent: `patients/${dependent.id}`,
        relationship: FamilyRelationship.PARENT,
        grants: [VIEW_RECORDS],
      },
      requestId: randomUUID(),
    };
    const first = await call(asPatient(guardian.id), "createFamilyLink", request);
    const retry = await call(asPatient(guardian.id), "createFamilyLink", request);
    expect(retry.familyLink?.name).toBe(first.familyLink?.name);
    const other = await adult();
    const reused = { ...request, familyLink: { ...request.familyLink, dependent: `patients/${other.id}` } };
    await expect(call(asPatient(guardian.id), "createFamilyLink", reused)).rejects.toMatchObject({
      reason: "REQUEST_ID_REUSED",
    });
  });

  it("allows one live link per pair", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    await invite(guardian, dependent);
    await expect(invite(guardian, dependent)).rejects.toMatchObject({
      kind: "already-exists",
      reason: "FAMILY_LINK_ALREADY_EXISTS",
    });
  });
});

describe("DeclineFamilyLink and RevokeFamilyLink", () => {
  it("lets the dependent decline an invitation, which then cannot be accepted", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent);
    const { familyLink } = await call(asPatient(dependent.id), "declineFamilyLink", { name: link.name });
    expect(familyLink).toMatchObject({ state: FamilyLink_State.DECLINED, dependent: "" });
    await expect(call(asPatient(dependent.id), "acceptFamilyLink", { name: link.name })).rejects.toMatchObject({
      kind: "failed-precondition",
      reason: "FAMILY_LINK_STATE_INVALID",
    });
    expect(await access.grantsFor(guardian.id, dependent.id)).toEqual(new Set());
  });

  it("revoked by the dependent, the link grants nothing on the very next check", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent, [VIEW_RECORDS, BOOK_CONSULTATIONS]);
    await call(asPatient(dependent.id), "acceptFamilyLink", { name: link.name });
    expect(await access.grantsFor(guardian.id, dependent.id)).toEqual(new Set([VIEW_RECORDS, BOOK_CONSULTATIONS]));

    const { familyLink } = await call(asPatient(dependent.id), "revokeFamilyLink", {
      name: link.name,
      reason: "no longer needed",
    });
    expect(familyLink?.state).toBe(FamilyLink_State.REVOKED);
    expect(familyLink?.revocation).toMatchObject({
      actor: { principal: `patients/${dependent.id}`, role: ActorRole.PATIENT },
      reason: "no longer needed",
    });
    expect(await access.grantsFor(guardian.id, dependent.id)).toEqual(new Set());
    await expect(call(asPatient(guardian.id), "revokeFamilyLink", { name: link.name })).rejects.toMatchObject({
      kind: "failed-precondition",
    });
  });

  it("keeps an invitee who revokes an invitation by email anonymous to the guardian", async () => {
    const [guardian, invitee] = [await adult(), await adult()];
    const { familyLink } = await call(asPatient(guardian.id), "createFamilyLink", {
      parent: `patients/${guardian.id}`,
      familyLink: {
        inviteeEmail: invitee.contact.email,
        relationship: FamilyRelationship.SIBLING,
        grants: [PAY_BILLS],
      },
      requestId: randomUUID(),
    });
    await call(asPatient(invitee.id), "revokeFamilyLink", { name: familyLink!.name, reason: "" });
    const seen = (await call(asPatient(guardian.id), "getFamilyLink", { name: familyLink!.name })).familyLink;
    expect(seen).toMatchObject({ state: FamilyLink_State.REVOKED, dependent: "", dependentDisplayName: "" });
    expect(seen?.revocation?.actor).toMatchObject({ principal: "", role: ActorRole.PATIENT });
    // The invitee still sees it among their links, as its dependent.
    const theirs = await call(asPatient(invitee.id), "listFamilyLinks", {
      parent: `patients/${invitee.id}`,
      role: FamilyLinkRole.DEPENDENT,
    });
    expect(theirs.familyLinks.map((link) => link.name)).toEqual([familyLink?.name]);
  });

  it("lets the guardian and an admin revoke; an etag given must match", async () => {
    const guardian = await adult();
    const { familyLink } = await dependentOf(guardian);
    await expect(
      call(asPatient(guardian.id), "revokeFamilyLink", { name: familyLink!.name, etag: "v9" }),
    ).rejects.toMatchObject({ reason: "ETAG_MISMATCH" });
    const admin = adminPrincipal();
    const revoked = await call(admin, "revokeFamilyLink", {
      name: familyLink!.name,
      etag: "v1",
      reason: "court order",
    });
    expect(revoked.familyLink?.revocation?.actor).toMatchObject({ principal: admin.name, role: ActorRole.ADMIN });
  });
});

describe("UpdateFamilyLink", () => {
  it("changes grants against the current etag and refuses a stale one with ABORTED", async () => {
    const guardian = await adult();
    const { familyLink } = await dependentOf(guardian);
    const dependentId = familyLink!.dependent.slice("patients/".length);
    const update = (etag: string) =>
      call(asPatient(guardian.id), "updateFamilyLink", {
        familyLink: { name: familyLink!.name, grants: [PAY_BILLS], etag },
        updateMask: { paths: ["grants"] },
      });
    const updated = (await update("v1")).familyLink;
    expect(updated).toMatchObject({ grants: [PAY_BILLS], etag: "v2", relationship: FamilyRelationship.CHILD });
    expect(await access.grantsFor(guardian.id, dependentId)).toEqual(new Set([PAY_BILLS]));
    await expect(update("v1")).rejects.toMatchObject({ kind: "aborted", reason: "ETAG_MISMATCH" });
  });

  it("lets the dependent narrow grants but not widen them", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent, [VIEW_RECORDS, PAY_BILLS]);
    await call(asPatient(dependent.id), "acceptFamilyLink", { name: link.name });
    const narrow = await call(asPatient(dependent.id), "updateFamilyLink", {
      familyLink: { name: link.name, grants: [VIEW_RECORDS] },
      updateMask: { paths: ["grants"] },
    });
    expect(narrow.familyLink?.grants).toEqual([VIEW_RECORDS]);
    await expect(
      call(asPatient(dependent.id), "updateFamilyLink", {
        familyLink: { name: link.name, grants: [VIEW_RECORDS, BOOK_CONSULTATIONS] },
        updateMask: { paths: ["grants"] },
      }),
    ).rejects.toMatchObject({ kind: "permission-denied", reason: "DEPENDENT_MAY_ONLY_NARROW" });
  });

  it("lets the guardian narrow what an adult dependent consented to, but not widen it without new consent", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent, [VIEW_RECORDS, PAY_BILLS]);
    await call(asPatient(dependent.id), "acceptFamilyLink", { name: link.name });
    const narrowed = await call(asPatient(guardian.id), "updateFamilyLink", {
      familyLink: { name: link.name, grants: [PAY_BILLS] },
      updateMask: { paths: ["grants"] },
    });
    expect(narrowed.familyLink?.grants).toEqual([PAY_BILLS]);
    await expect(
      call(asPatient(guardian.id), "updateFamilyLink", {
        familyLink: { name: link.name, grants: [PAY_BILLS, VIEW_RECORDS] },
        updateMask: { paths: ["grants"] },
      }),
    ).rejects.toMatchObject({ kind: "failed-precondition", reason: "DEPENDENT_CONSENT_REQUIRED" });
    expect(await access.grantsFor(guardian.id, dependent.id)).toEqual(new Set([PAY_BILLS]));
  });

  it("refuses a mask naming anything but grants and relationship", async () => {
    const guardian = await adult();
    const { familyLink } = await dependentOf(guardian);
    await expect(
      call(asPatient(guardian.id), "updateFamilyLink", {
        familyLink: { name: familyLink!.name, dependent: `patients/${randomUUID()}` },
        updateMask: { paths: ["dependent"] },
      }),
    ).rejects.toMatchObject({ kind: "invalid-argument", reason: "INVALID_UPDATE_MASK" });
  });
});

describe("a minor's link ends at the age of majority", () => {
  it("reads as EXPIRED once the dependent comes of age, and grants nothing", async () => {
    const guardian = await adult();
    const { familyLink } = await dependentOf(guardian, { year: 2008, month: 12, day: 1 }); // 18 on 2026-12-01
    const dependentId = familyLink!.dependent.slice("patients/".length);
    expect(timestampDate(familyLink!.endTime!).toISOString()).toBe("2026-12-01T00:00:00.000Z");

    clock.set("2026-11-30T23:59:59.999Z");
    expect(await access.grantsFor(guardian.id, dependentId)).toEqual(new Set([VIEW_RECORDS, BOOK_CONSULTATIONS]));
    clock.set("2026-12-01T00:00:00.000Z");
    expect(await access.grantsFor(guardian.id, dependentId)).toEqual(new Set());
    const read = await call(asPatient(guardian.id), "getFamilyLink", { name: familyLink!.name });
    expect(read.familyLink).toMatchObject({ state: FamilyLink_State.EXPIRED, dependentIsMinor: false });
    const active = await call(asPatient(guardian.id), "listFamilyLinks", {
      parent: `patients/${guardian.id}`,
      states: [FamilyLink_State.ACTIVE],
    });
    expect(active.familyLinks).toEqual([]);
    const expired = await call(asPatient(guardian.id), "listFamilyLinks", {
      parent: `patients/${guardian.id}`,
      states: [FamilyLink_State.EXPIRED],
    });
    expect(expired.familyLinks.map((link) => link.name)).toEqual([familyLink?.name]);
    await expect(
      call(asPatient(guardian.id), "updateFamilyLink", {
        familyLink: { name: familyLink!.name, grants: [PAY_BILLS] },
        updateMask: { paths: ["grants"] },
      }),
    ).rejects.toMatchObject({ kind: "failed-precondition" });
  });

  it("lets the guardian invite the dependent again once they are an adult", async () => {
    const guardian = await adult();
    const { familyLink } = await dependentOf(guardian, { year: 2008, month: 12, day: 1 });
    const dependentId = familyLink!.dependent.slice("patients/".length);
    clock.set("2027-01-15T09:00:00.000Z");
    const again = await invite(guardian, await patients.get(dependentId));
    const accepted = await call(asPatient(dependentId), "acceptFamilyLink", { name: again.name });
    expect(accepted.familyLink).toMatchObject({ state: FamilyLink_State.ACTIVE, dependentIsMinor: false });
    expect(accepted.familyLink?.endTime).toBeUndefined();
    const old = await call(asPatient(guardian.id), "getFamilyLink", { name: familyLink!.name });
    expect(old.familyLink?.state).toBe(FamilyLink_State.EXPIRED);
  });

  it("lets an unanswered invitation lapse after 30 days", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent);
    clock.set("2026-12-28T10:00:00.000Z");
    await expect(call(asPatient(dependent.id), "acceptFamilyLink", { name: link.name })).rejects.toMatchObject({
      kind: "failed-precondition",
      reason: "FAMILY_LINK_STATE_INVALID",
    });
    const read = await call(asPatient(guardian.id), "getFamilyLink", { name: link.name });
    expect(read.familyLink?.state).toBe(FamilyLink_State.EXPIRED);
  });
});

describe("who may see and change a link", () => {
  it("answers NOT_FOUND to another patient on Get, Accept, Decline and Revoke", async () => {
    const [guardian, dependent, stranger] = [await adult(), await adult(), await adult()];
    const link = await invite(guardian, dependent);
    const notFound = { kind: "not-found", reason: "FAMILY_LINK_NOT_FOUND" };
    const them = asPatient(stranger.id);
    await expect(call(them, "getFamilyLink", { name: link.name })).rejects.toMatchObject(notFound);
    await expect(call(them, "acceptFamilyLink", { name: link.name })).rejects.toMatchObject(notFound);
    await expect(call(them, "declineFamilyLink", { name: link.name })).rejects.toMatchObject(notFound);
    await expect(call(them, "revokeFamilyLink", { name: link.name })).rejects.toMatchObject(notFound);
    await expect(
      call(them, "updateFamilyLink", {
        familyLink: { name: link.name, grants: [PAY_BILLS] },
        updateMask: { paths: ["grants"] },
      }),
    ).rejects.toMatchObject(notFound);
    // The same answer as for a link that does not exist at all.
    const missing = `patients/${guardian.id}/familyLinks/${randomUUID()}`;
    await expect(call(them, "getFamilyLink", { name: missing })).rejects.toMatchObject(notFound);
    // And a doctor learns nothing either.
    await expect(call(doctorPrincipal(), "getFamilyLink", { name: link.name })).rejects.toMatchObject(notFound);
  });

  it("answers NOT_FOUND for a link named under another guardian", async () => {
    const [guardian, dependent, other] = [await adult(), await adult(), await adult()];
    const link = await invite(guardian, dependent);
    const renamed = link.name.replace(guardian.id, other.id);
    await expect(call(asPatient(other.id), "getFamilyLink", { name: renamed })).rejects.toMatchObject({
      reason: "FAMILY_LINK_NOT_FOUND",
    });
  });

  it("lets an admin read any link, but only the dependent accept it", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = await invite(guardian, dependent);
    expect((await call(adminPrincipal(), "getFamilyLink", { name: link.name })).familyLink?.name).toBe(link.name);
    await expect(call(asPatient(guardian.id), "acceptFamilyLink", { name: link.name })).rejects.toMatchObject({
      kind: "permission-denied",
      reason: "ONLY_DEPENDENT_MAY_ANSWER",
    });
    await expect(call(adminPrincipal(), "acceptFamilyLink", { name: link.name })).rejects.toMatchObject({
      kind: "permission-denied",
    });
  });

  it("refuses another patient's family on the guardian-side methods", async () => {
    const [guardian, stranger] = [await adult(), await adult()];
    await expect(
      call(asPatient(stranger.id), "listFamilyLinks", { parent: `patients/${guardian.id}` }),
    ).rejects.toMatchObject({ kind: "not-found" });
    await expect(
      call(asPatient(stranger.id), "createDependent", {
        parent: `patients/${guardian.id}`,
        dependent: dependentJson({ year: 2016, month: 1, day: 1 }),
        relationship: FamilyRelationship.CHILD,
        grants: [VIEW_RECORDS],
        requestId: randomUUID(),
      }),
    ).rejects.toMatchObject({ kind: "not-found" });
    await expect(call(undefined, "listFamilyLinks", { parent: `patients/${guardian.id}` })).rejects.toMatchObject({
      kind: "unauthenticated",
    });
  });
});

describe("ListFamilyLinks", () => {
  it("pages through a guardian's links newest first, without gaps or repeats", async () => {
    const guardian = await adult();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await invite(guardian, await adult())).name);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await call(asPatient(guardian.id), "listFamilyLinks", {
        parent: `patients/${guardian.id}`,
        pageSize: 2,
        pageToken,
      });
      expect(page.familyLinks.length).toBeLessThanOrEqual(2);
      seen.push(...page.familyLinks.map((link) => link.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual([...made].reverse());
  });

  it("refuses a page token of another query", async () => {
    const guardian = await adult();
    for (let i = 0; i < 2; i++) await invite(guardian, await adult());
    const page = await call(asPatient(guardian.id), "listFamilyLinks", {
      parent: `patients/${guardian.id}`,
      pageSize: 1,
    });
    await expect(
      call(asPatient(guardian.id), "listFamilyLinks", {
        parent: `patients/${guardian.id}`,
        role: FamilyLinkRole.DEPENDENT,
        pageToken: page.nextPageToken,
      }),
    ).rejects.toMatchObject({ kind: "invalid-argument" });
  });
});
