import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { withClient } from "../audit/audit-fixtures.ts";
import { refusal } from "../consultations/consultation-fixtures.ts";
import { authClient, signUpPatient, staffSession, type TestSession, testPassword } from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

let t: TestApp;
let admin: TestSession;

beforeAll(async () => {
  t = await startTestApp();
  admin = await staffSession(t, "admin");
}, 120_000);
afterAll(async () => {
  await t?.close();
});

function patients(session: TestSession) {
  return createClient(
    PatientService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
  );
}

const idOf = (name: string) => name.split("/").at(-1) as string;

/** Every row of a table, as text (what a dump or a look at the database shows). */
async function tableText(table: string): Promise<string> {
  return withClient(t.database.url, async (client) => {
    const result = await client.query<{ row: string }>(`select row_to_json(t)::text as "row" from "${table}" t`);
    return result.rows.map((r) => r.row).join("\n");
  });
}

/** A unique phone number, street and UPI id, so their absence from the tables means something. */
function uniqueContact() {
  const digits = String(Math.floor(Math.random() * 1e9)).padStart(9, "0");
  return {
    phone: `+9198${digits}`,
    street: `Canary Street ${randomUUID().slice(0, 8)}`,
    upiId: `canary${digits}@okaxis`,
    contactPhone: `+9197${digits}`,
  };
}

describe("issue #6: contact details are sealed at rest, and emails found by a blind index", () => {
  it("stores no plaintext email, phone, address, UPI id or emergency contact in patients and accounts", async () => {
    const canary = uniqueContact();
    const session = await signUpPatient(t, {
      patient: {
        contact: {
          phone: canary.phone,
          address: { lines: [canary.street], locality: "Pune", region: "MH", postalCode: "411001", regionCode: "IN" },
        },
        upiId: canary.upiId,
        emergencyContacts: [{ displayName: "Canary Contact", relationship: "sister", phone: canary.contactPhone }],
      },
    });
    const [patientRows, accountRows] = [await tableText("patients"), await tableText("accounts")];
    expect(patientRows).toContain(idOf(session.patient));
    for (const rows of [patientRows, accountRows]) {
      for (const needle of [session.email, session.email.split("@")[0] as string, canary.phone, canary.street]) {
        expect(rows).not.toContain(needle);
      }
    }
    expect(patientRows).not.toContain(canary.upiId);
    expect(patientRows).not.toContain(canary.contactPhone);
    expect(patientRows).not.toContain("Canary Contact");
    // No plaintext contact column is left on a new database.
    const columns = await withClient(t.database.url, async (client) => {
      const result = await client.query<{ c: string }>(
        `select table_name || '.' || column_name as c from information_schema.columns ` +
          `where table_name in ('patients', 'accounts') order by 1`,
      );
      return result.rows.map((r) => r.c);
    });
    for (const plain of ["email", "phone", "address", "upi_id", "insurance", "emergency_contacts"]) {
      expect(columns).not.toContain(`patients.${plain}`);
    }
    expect(columns).not.toContain("accounts.email");
    expect(columns).toEqual(expect.arrayContaining(["patients.contact_sealed", "patients.email_index"]));
    // The blind index key is its own, generated beside the data-encryption keys.
    const blindKey = await readFile(join(t.dataDir, "keys", "blind-index.key"), "utf8");
    expect(Buffer.from(blindKey.trim(), "base64")).toHaveLength(32);

    // And the API reads every field back.
    const { patient } = await patients(session).getPatient({ name: session.patient });
    expect(patient?.contact?.email).toBe(session.email);
    expect(patient?.contact?.phone).toBe(canary.phone);
    expect(patient?.contact?.address?.lines).toEqual([canary.street]);
    expect(patient?.upiId).toBe(canary.upiId);
    expect(patient?.emergencyContacts[0]?.phone).toBe(canary.contactPhone);
    expect(patient?.insurance?.policyNumber).toBe("P-123");
  });

  it("signs up, verifies and logs in by email, in any case; a second sign-up with the address is ALREADY_EXISTS", async () => {
    const session = await signUpPatient(t, { enrollMfa: false });
    const loggedIn = await authClient(t).logIn({ email: session.email.toUpperCase(), password: testPassword });
    expect(loggedIn.outcome.case).toBe("tokens");

    const again = authClient(t).signUp({
      patient: fromJson(
        PatientSchema,
        newPatientJson({
          contact: { email: session.email.toUpperCase(), phone: "+919812345678" },
        }) as never,
      ),
      password: testPassword,
      requestId: randomUUID(),
      acceptedTermsVersion: "2026-11",
    });
    expect((await refusal(again)).code).toBe(Code.AlreadyExists);
    // CreatePatient (an admin) checks the same index, whatever the case.
    const created = patients(admin).createPatient({
      patient: fromJson(PatientSchema, newPatientJson({ contact: { email: session.email.toUpperCase() } }) as never),
    });
    expect(await refusal(created)).toMatchObject({ code: Code.AlreadyExists, reason: "EMAIL_ALREADY_REGISTERED" });
    // A password reset finds the account by the index too (the answer is the same either way; the mail shows it).
    await authClient(t).requestPasswordReset({ email: session.email.toUpperCase() });
    const notifications = t.app.siblings.simulators?.notification;
    if (notifications !== undefined) {
      await notifications.waitForMessageTo(session.email, { after: 1, timeoutMs: 5000 });
    }
  });

  it("changes one sealed field under the row's key and keeps the others", async () => {
    const session = await signUpPatient(t);
    const before = (await patients(session).getPatient({ name: session.patient })).patient;
    const { patient } = await patients(session).updatePatient({
      patient: { name: session.patient, contact: { phone: "+919811111111" }, etag: before?.etag },
      updateMask: { paths: ["contact.phone"] },
    });
    expect(patient?.contact?.phone).toBe("+919811111111");
    expect(patient?.contact?.email).toBe(session.email);
    expect(patient?.upiId).toBe(before?.upiId);
    expect((await patients(session).getPatient({ name: session.patient })).patient?.contact?.phone).toBe(
      "+919811111111",
    );
    expect(await tableText("patients")).not.toContain("+919811111111");
  });

  it("answers DATA_LOSS for a ciphertext swapped between two patients' rows, leaking neither", async () => {
    const [victim, other] = [await signUpPatient(t), await signUpPatient(t)];
    await withClient(t.database.url, (client) =>
      client.query(
        `update "patients" set "contact_sealed" = (select "contact_sealed" from "patients" where "id" = $1) where "id" = $2`,
        [idOf(other.patient), idOf(victim.patient)],
      ),
    );
    const error = await refusal(patients(admin).getPatient({ name: victim.patient }));
    expect(error).toMatchObject({ code: Code.DataLoss, reason: "PATIENT_INTEGRITY_CHECK_FAILED" });
    expect(error.message).not.toContain(other.email);
    expect(error.message).not.toContain(victim.email);
    // The ciphertext with its wrapped data key: the key is bound to its own row.
    await withClient(t.database.url, (client) =>
      client.query(
        `update "patients" set ("contact_sealed", "data_key_wrapped") = ` +
          `(select "contact_sealed", "data_key_wrapped" from "patients" where "id" = $1) where "id" = $2`,
        [idOf(other.patient), idOf(victim.patient)],
      ),
    );
    const again = await refusal(patients(victim).getPatient({ name: victim.patient }));
    expect(again).toMatchObject({ code: Code.DataLoss, reason: "PATIENT_INTEGRITY_CHECK_FAILED" });
    expect(again.message).not.toContain(other.email);
    // The other patient still reads.
    expect((await patients(other).getPatient({ name: other.patient })).patient?.contact?.email).toBe(other.email);
  });

  it("answers repeated reads from the row as it is now: a swap after many reads fails, a change behind the service's back shows", async () => {
    const [victim, other] = [await signUpPatient(t), await signUpPatient(t)];
    const binary = createClient(
      PatientService,
      createConnectTransport({
        baseUrl: t.baseUrl,
        httpVersion: "2",
        useBinaryFormat: true,
        interceptors: [admin.interceptor],
      }),
    );
    // Reads of an unchanged row are answered from what the first one opened and encoded.
    for (let i = 0; i < 3; i++) {
      expect((await patients(admin).getPatient({ name: victim.patient })).patient?.contact?.email).toBe(victim.email);
      expect((await binary.getPatient({ name: victim.patient })).patient?.contact?.email).toBe(victim.email);
    }
    // A name changed in the database directly, version untouched: the next read shows it.
    await withClient(t.database.url, (client) =>
      client.query(`update "patients" set "given_name" = 'Changed' where "id" = $1`, [idOf(victim.patient)]),
    );
    expect((await binary.getPatient({ name: victim.patient })).patient?.legalName?.givenName).toBe("Changed");
    expect((await patients(admin).getPatient({ name: victim.patient })).patient?.legalName?.givenName).toBe("Changed");
    // Another row's ciphertext, version untouched: refused, not served from the earlier reads.
    await withClient(t.database.url, (client) =>
      client.query(
        `update "patients" set "contact_sealed" = (select "contact_sealed" from "patients" where "id" = $1) where "id" = $2`,
        [idOf(other.patient), idOf(victim.patient)],
      ),
    );
    for (const client of [binary, patients(admin)]) {
      const error = await refusal(client.getPatient({ name: victim.patient }));
      expect(error).toMatchObject({ code: Code.DataLoss, reason: "PATIENT_INTEGRITY_CHECK_FAILED" });
      expect(error.message).not.toContain(other.email);
    }
  });
});
