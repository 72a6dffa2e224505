import { generateKeyPairSync, randomUUID } from "node:crypto";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  calculateJwkThumbprint,
  compactDecrypt,
  createLocalJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  jwtVerify,
  SignJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/telemed/patient/v1/audit_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import {
  BloodGroup_Abo,
  BloodGroup_Rh,
  Condition_ClinicalStatus,
  RecordKind,
} from "../../gen/telemed/patient/v1/record_pb.js";
import {
  Device_Platform,
  OfflineBundlePayloadSchema,
  RecordChange_Type,
} from "../../gen/telemed/patient/v1/record_sync_pb.js";
import { bookFirstFree, consultations, refusal, ShiftedClock } from "../consultations/consultation-fixtures.ts";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { addRecord, allergy, daysAgo, note, prescription, recordTestEnv, records } from "./record-fixtures.ts";
import { guardianOf } from "../support/guardian-fixtures.ts";

const bundleType = "telemed-offline-bundle+jwt";
const issuer = "urn:telemed:patient-service";

let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let other: TestSession;
let asha: TestSession;
let admin: TestSession;
/** The JWKS as a device fetched it while it still had a connection. */
let jwks: JSONWebKeySet;
let summaryRecord: string;

beforeAll(async () => {
  t = await startTestApp(recordTestEnv, { clock });
  [patient, other, asha, admin] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    staffSession(t, "doctor", { doctorId: "asha-rao" }),
    staffSession(t, "admin"),
  ]);
  // A completed consultation with Dr. Asha Rao: her care relationship, and a summary for the bundle.
  const booked = await bookFirstFree(consultations(t, patient), patient.patient, clock);
  clock.travelTo(new Date(booked.startMs - 5 * 60_000));
  await consultations(t, asha).startConsultation({ name: booked.consultation.name });
  const completed = await consultations(t, asha).completeConsultation({
    name: booked.consultation.name,
    summary: { chiefComplaint: "Wheezing at night", plan: "Salbutamol inhaler as needed" },
  });
  summaryRecord = completed.consultation?.summaryRecord ?? "";
  clock.reset();
  jwks = (await (await fetch(`${t.baseUrl}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
}, 120_000);
afterAll(async () => {
  await t?.close();
});

function bundleName(session: TestSession): string {
  return `${session.patient}/offlineBundle`;
}

/** Verifies a bundle the way an offline device does: the JWKS fetched earlier, nothing else. */
async function verifyOffline(jws: string) {
  const { payload, protectedHeader } = await jwtVerify(jws, createLocalJWKSet(jwks), { issuer, typ: bundleType });
  return {
    header: protectedHeader,
    claims: payload,
    bundle: fromJson(OfflineBundlePayloadSchema, payload as JsonObject, { ignoreUnknownFields: true }),
  };
}

async function deviceKeys(crv: "P-256" | "X25519" = "P-256") {
  const pair = await generateKeyPair("ECDH-ES+A256KW", { crv, extractable: true });
  return { ...pair, publicJwk: JSON.stringify(await exportJWK(pair.publicKey)) };
}

describe("TST-PT007-1 a patient views their critical records offline from a signed bundle", () => {
  it("verifies the bundle with only the JWKS fetched earlier and reads the critical records from it", async () => {
    const doctor = records(t, asha);
    const penicillin = await addRecord(doctor, patient.patient, {
      effectiveTime: daysAgo(30),
      details: { case: "allergy", value: { substance: { display: "Penicillin" }, active: true } },
    });
    const oldAllergy = await addRecord(doctor, patient.patient, {
      effectiveTime: daysAgo(400),
      details: { case: "allergy", value: { substance: { display: "Latex" }, active: false } },
    });
    const asthma = await addRecord(doctor, patient.patient, {
      effectiveTime: daysAgo(20),
      details: {
        case: "condition",
        value: { code: { display: "Asthma" }, clinicalStatus: Condition_ClinicalStatus.ACTIVE },
      },
    });
    const resolved = await addRecord(doctor, patient.patient, {
      effectiveTime: daysAgo(300),
      details: {
        case: "condition",
        value: { code: { display: "Fractured wrist" }, clinicalStatus: Condition_ClinicalStatus.RESOLVED },
      },
    });
    const inhaler = await addRecord(doctor, patient.patient, { ...prescription("Salbutamol", 1) });
    if (inhaler.details.case === "prescription") expect(inhaler.details.value.durationDays).toBe(5);
    const finished = await addRecord(doctor, patient.patient, prescription("Amoxicillin", 60));
    await addRecord(records(t, admin), patient.patient, {
      effectiveTime: daysAgo(1000),
      details: { case: "bloodGroup", value: { abo: BloodGroup_Abo.O, rh: BloodGroup_Rh.NEGATIVE } },
    });
    const vaccine = await addRecord(doctor, patient.patient, {
      effectiveTime: daysAgo(90),
      details: { case: "immunization", value: { vaccine: { display: "Tetanus" }, doseNumber: 1 } },
    });
    const myNote = await addRecord(records(t, patient), patient.patient, note("Dizzy this morning"));

    const { offlineBundle } = await records(t, patient).getOfflineBundle({ name: bundleName(patient) });
    expect(offlineBundle?.jwe).toBe("");
    expect(offlineBundle?.device).toBe("");
    const jws = offlineBundle?.jws ?? "";

    // Offline: the JWKS fetched earlier is all the device has.
    const { header, claims, bundle } = await verifyOffline(jws);
    expect(header.kid).toBe(offlineBundle?.signingKeyId);
    expect(jwks.keys.map((key) => key.kid)).toContain(header.kid);
    expect(claims.sub).toBe(patient.patient);
    expect(Number(claims.exp) - Number(claims.iat)).toBe(7 * 86_400);
    expect(Number(bundle.issueTime?.seconds)).toBe(claims.iat);
    expect(Number(bundle.expireTime?.seconds)).toBe(claims.exp);
    // What the online client sees in the clear is what was signed.
    expect(bundle).toEqual(offlineBundle?.payload);

    expect(bundle.patient).toBe(patient.patient);
    expect(bundle.legalName).toMatchObject({ givenName: "Asha", familyName: "Rao" });
    expect(bundle.birthDate).toMatchObject({ year: 1990, month: 4, day: 12 });
    expect(bundle.emergencyContacts).toEqual([
      expect.objectContaining({ displayName: "Ravi Rao", relationship: "spouse", phone: "+919800000001" }),
    ]);
    expect(bundle.bloodGroup).toMatchObject({ abo: BloodGroup_Abo.O, rh: BloodGroup_Rh.NEGATIVE });
    const names = (list: { name: string }[]) => list.map((r) => r.name);
    expect(names(bundle.allergies)).toEqual([penicillin.name]);
    expect(names(bundle.allergies)).not.toContain(oldAllergy.name);
    expect(names(bundle.conditions)).toEqual([asthma.name]);
    expect(names(bundle.conditions)).not.toContain(resolved.name);
    expect(names(bundle.currentMedications)).toEqual([inhaler.name]);
    expect(names(bundle.currentMedications)).not.toContain(finished.name);
    expect(names(bundle.immunizations)).toEqual([vaccine.name]);
    expect(names(bundle.recentConsultationSummaries)).toEqual([summaryRecord]);
    expect(bundle.recentConsultationSummaries[0]?.details.value).toMatchObject({
      chiefComplaint: "Wheezing at night",
    });
    expect(bundle.allergies[0]?.details).toEqual(penicillin.details);
    // A patient's own notes are not critical records.
    expect(JSON.stringify(claims)).not.toContain(myNote.name);

    // The feed has the consultation's summary too (written by the consultations context).
    const feed = await records(t, patient).pullRecordChanges({ parent: patient.patient, pageSize: 500 });
    const summaryChange = feed.changes.find((change) => change.record?.name === summaryRecord);
    expect(summaryChange).toMatchObject({
      type: RecordChange_Type.CREATED,
      record: { kind: RecordKind.CONSULTATION_SUMMARY },
    });
    // The bundle's cursor is where a sync after it starts: nothing has changed since.
    const pulled = await records(t, patient).pullRecordChanges({ parent: patient.patient, cursor: bundle.cursor });
    expect(pulled.changes).toEqual([]);

    // The bundle read is in the patient's access view, as an export.
    const audit = createClient(
      AuditService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
    );
    const events = await audit.listAccessEvents({ parent: patient.patient, pageSize: 100, includeOwn: true });
    expect(events.accessEvents.some((e) => e.resource === bundleName(patient) && e.action === AuditAction.EXPORT)).toBe(
      true,
    );
  });

  it("refuses a tampered bundle, one signed by another key, and never takes it for an access token", async () => {
    await addRecord(records(t, asha), patient.patient, allergy("Peanuts", 2));
    const { offlineBundle } = await records(t, patient).getOfflineBundle({ name: bundleName(patient) });
    const jws = offlineBundle?.jws ?? "";
    const [head, body, signature] = jws.split(".");
    const claims = JSON.parse(Buffer.from(body ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
    // Someone removes an allergy from the bundle.
    const tamperedClaims = { ...claims, allergies: [] };
    const tampered = `${head}.${Buffer.from(JSON.stringify(tamperedClaims)).toString("base64url")}.${signature}`;
    await expect(verifyOffline(tampered)).rejects.toMatchObject({ code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
    // A flipped bit in the signature.
    const flipped = `${head}.${body}.${(signature ?? "").startsWith("A") ? "B" : "A"}${(signature ?? "").slice(1)}`;
    await expect(verifyOffline(flipped)).rejects.toThrow();

    // Re-signed by someone else's key under the service's kid.
    const forger = generateKeyPairSync("ed25519");
    const forged = await new SignJWT(tamperedClaims)
      .setProtectedHeader({ alg: "EdDSA", kid: decodeProtectedHeader(jws).kid, typ: bundleType })
      .sign(forger.privateKey);
    await expect(verifyOffline(forged)).rejects.toMatchObject({ code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });

    // Signed with the token key, yet never an access token (typ and audience differ).
    const asToken = createClient(
      PatientService,
      createConnectTransport({
        baseUrl: t.baseUrl,
        httpVersion: "1.1",
        interceptors: [
          (next) => (request) => {
            request.header.set("authorization", `Bearer ${jws}`);
            return next(request);
          },
        ],
      }),
    );
    expect((await refusal(asToken.getPatient({ name: patient.patient }))).code).toBe(Code.Unauthenticated);
  });

  it("encrypts the bundle for a registered device, which alone decrypts it", async () => {
    const client = records(t, patient);
    const phone = await deviceKeys("P-256");
    const requestId = randomUUID();
    const { device } = await client.registerDevice({
      parent: patient.patient,
      device: {
        displayName: "My phone",
        platform: Device_Platform.ANDROID,
        publicKeyJwk: phone.publicJwk,
        pushToken: "fcm-token-1",
      },
      requestId,
    });
    expect(device?.name).toMatch(new RegExp(`^${patient.patient}/devices/[0-9a-f-]{36}$`));
    expect(device?.keyThumbprint).toBe(await calculateJwkThumbprint(JSON.parse(phone.publicJwk)));
    expect(device?.pushToken).toBe("fcm-token-1");
    // A retry returns the first result; the same request id for another key is refused.
    const retried = await client.registerDevice({
      parent: patient.patient,
      device: { displayName: "My phone", platform: Device_Platform.ANDROID, publicKeyJwk: phone.publicJwk },
      requestId,
    });
    expect(retried.device?.name).toBe(device?.name);
    const stranger = await deviceKeys("P-256");
    expect(
      await refusal(
        client.registerDevice({
          parent: patient.patient,
          device: { displayName: "Other", platform: Device_Platform.IOS, publicKeyJwk: stranger.publicJwk },
          requestId,
        }),
      ),
    ).toMatchObject({ code: Code.InvalidArgument, reason: "REQUEST_ID_REUSED" });

    const { offlineBundle } = await client.getOfflineBundle({ name: bundleName(patient), device: device?.name ?? "" });
    expect(offlineBundle).toMatchObject({ jws: "", device: device?.name });
    // Nothing in the clear when encrypted for a device.
    expect(offlineBundle?.payload).toBeUndefined();
    const jwe = offlineBundle?.jwe ?? "";
    expect(decodeProtectedHeader(jwe)).toMatchObject({
      alg: "ECDH-ES+A256KW",
      enc: "A256GCM",
      kid: device?.keyThumbprint,
    });
    const { plaintext } = await compactDecrypt(jwe, phone.privateKey);
    const { bundle } = await verifyOffline(new TextDecoder().decode(plaintext));
    expect(bundle.patient).toBe(patient.patient);
    expect(bundle.allergies.length).toBeGreaterThan(0);
    // Another device's private key does not open it.
    await expect(compactDecrypt(jwe, stranger.privateKey)).rejects.toThrow();

    // An X25519 key works too; the list shows both devices, and when the phone last fetched.
    const laptop = await deviceKeys("X25519");
    const { device: second } = await client.registerDevice({
      parent: patient.patient,
      device: { displayName: "Laptop", platform: Device_Platform.WEB, publicKeyJwk: laptop.publicJwk },
      requestId: randomUUID(),
    });
    const forLaptop = await client.getOfflineBundle({ name: bundleName(patient), device: second?.name ?? "" });
    const opened = await compactDecrypt(forLaptop.offlineBundle?.jwe ?? "", laptop.privateKey);
    expect((await verifyOffline(new TextDecoder().decode(opened.plaintext))).bundle.patient).toBe(patient.patient);
    const first = await client.listDevices({ parent: patient.patient, pageSize: 1 });
    const rest = await client.listDevices({ parent: patient.patient, pageToken: first.nextPageToken });
    const listed = [...first.devices, ...rest.devices];
    expect(listed.map((d) => d.name)).toEqual([device?.name, second?.name]);
    expect(listed[0]?.lastSeenTime).toBeDefined();

    // A deleted device gets no bundle.
    await client.deleteDevice({ name: device?.name ?? "" });
    expect(
      (await refusal(client.getOfflineBundle({ name: bundleName(patient), device: device?.name ?? "" }))).code,
    ).toBe(Code.NotFound);
    expect((await refusal(client.deleteDevice({ name: device?.name ?? "" }))).code).toBe(Code.NotFound);
    expect((await client.listDevices({ parent: patient.patient })).devices.map((d) => d.name)).toEqual([second?.name]);
  });

  it("refuses keys that are not EC P-256 or X25519 public keys, and other bad input", async () => {
    const client = records(t, patient);
    const register = (publicKeyJwk: string, platform = Device_Platform.IOS) =>
      refusal(
        client.registerDevice({
          parent: patient.patient,
          device: { displayName: "Phone", platform, publicKeyJwk },
          requestId: randomUUID(),
        }),
      );
    const pair = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256", extractable: true });
    const privateJwk = JSON.stringify(await exportJWK(pair.privateKey));
    expect(await register(privateJwk)).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_FIELD" });
    const rsa = await generateKeyPair("RSA-OAEP-256", { extractable: true });
    expect((await register(JSON.stringify(await exportJWK(rsa.publicKey)))).code).toBe(Code.InvalidArgument);
    expect((await register("not json")).code).toBe(Code.InvalidArgument);
    const offCurve = { kty: "EC", crv: "P-256", x: "AAAA", y: "AAAA" };
    expect((await register(JSON.stringify(offCurve))).code).toBe(Code.InvalidArgument);
    const good = (await deviceKeys()).publicJwk;
    expect((await register(good, Device_Platform.UNSPECIFIED)).code).toBe(Code.InvalidArgument);
    expect((await refusal(client.getOfflineBundle({ name: `${patient.patient}/bundle` }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await refusal(client.getOfflineBundle({ name: bundleName(patient), device: "devices/phone" }))).code).toBe(
      Code.InvalidArgument,
    );
  });
});

describe("offline bundle access", () => {
  it("answers NOT_FOUND for another patient's bundle or device, and serves a guardian with the view grant", async () => {
    const mine = records(t, other);
    expect((await refusal(mine.getOfflineBundle({ name: bundleName(patient) }))).code).toBe(Code.NotFound);
    expect((await refusal(mine.listDevices({ parent: patient.patient }))).code).toBe(Code.NotFound);
    // The patient's own bundle encrypted to someone else's device: NOT_FOUND like a missing one.
    const otherKeys = await deviceKeys();
    const { device } = await mine.registerDevice({
      parent: other.patient,
      device: { displayName: "Theirs", platform: Device_Platform.IOS, publicKeyJwk: otherKeys.publicJwk },
      requestId: randomUUID(),
    });
    const withTheirDevice = records(t, patient).getOfflineBundle({
      name: bundleName(patient),
      device: device?.name ?? "",
    });
    expect((await refusal(withTheirDevice)).code).toBe(Code.NotFound);
    expect((await refusal(records(t, patient).deleteDevice({ name: device?.name ?? "" }))).code).toBe(Code.NotFound);

    const guardian = await guardianOf(t, patient, [FamilyGrant.VIEW_RECORDS]);
    const { offlineBundle } = await records(t, guardian).getOfflineBundle({ name: bundleName(patient) });
    expect((await verifyOffline(offlineBundle?.jws ?? "")).bundle.patient).toBe(patient.patient);
    const withoutGrant = await guardianOf(t, patient, [FamilyGrant.BOOK_CONSULTATIONS]);
    expect((await refusal(records(t, withoutGrant).getOfflineBundle({ name: bundleName(patient) }))).code).toBe(
      Code.NotFound,
    );
  });
});
