import { fromJson } from "@bufbuild/protobuf";
import { createHash, randomBytes } from "node:crypto";
import { type Patient, PatientSchema } from "../gen/telemed/patient/v1/patient_pb.js";
import { PatientSealer, type SealedColumns } from "../src/patients/patient-contact.ts";
import { BlindIndex } from "../src/shared/crypto/blind-index.ts";
import { EnvelopeCipher } from "../src/shared/crypto/envelope.ts";
import { fieldCryptoOf } from "../src/shared/crypto/field-crypto.ts";
import { parseKeyRing } from "../src/shared/crypto/key-ring.ts";
import { uuidV7 } from "../src/shared/uuid-v7.ts";
import { newPatientJson } from "../test/support/patient-fixtures.ts";

/**
 * The profile every bench create stores: the tests' complete profile (address,
 * insurance, an emergency contact), with the email changed and the family name
 * carrying the email's prefix (the email is sealed in the table, so rows are
 * counted by the name: `benchFamilyName`).
 */
export function benchPatient(email: string): Patient {
  const json = newPatientJson();
  return fromJson(PatientSchema, {
    ...json,
    legalName: { ...(json.legalName as object), familyName: benchFamilyName(email) },
    contact: { ...(json.contact as object), email },
  } as never);
}

/** `Rao <prefix>` for `bench.<prefix>.<n>@example.com`: the same for every row of one prefix. */
export function benchFamilyName(email: string): string {
  return `Rao ${email.split(".")[1] ?? ""}`;
}

/** What the service seals of the bench profile (src/patients/patient-contact.ts), but the email. */
const benchSealedFields = {
  phone: "+919812345678",
  address: { lines: ["12 MG Road"], locality: "Bengaluru", region: "KA", postalCode: "560001", regionCode: "IN" },
  emergencyContacts: [{ displayName: "Ravi Rao", relationship: "spouse", phone: "+919800000001" }],
  upiId: "asha.rao@okaxis",
  insurance: {
    provider: "Star Health",
    policyNumber: "P-123",
    memberId: "M-9",
    validUntil: { year: 2030, month: 1, day: 31 },
  },
};

let sealedTemplate: SealedColumns | undefined;

/**
 * The sealed columns of a bench row, made once with keys of this process: a raw
 * INSERT writes values of the size the service writes (ciphertext, wrapped key); what
 * they decrypt to does not matter to it (the template's email has a bench email's length,
 * a run id and a letter as its prefix). The email index differs per row (it is unique).
 */
function sealedColumns(email: string): SealedColumns {
  sealedTemplate ??= new PatientSealer(
    fieldCryptoOf(
      new EnvelopeCipher(parseKeyRing(`bench=${randomBytes(32).toString("base64")}\n`, "bench")),
      new BlindIndex(randomBytes(32)),
    ),
  ).sealNew(uuidV7(), { email: benchEmail("0".repeat(9), 0), ...benchSealedFields });
  return { ...sealedTemplate, emailIndex: createHash("sha256").update(email).digest("hex") };
}

/**
 * The same profile as the `patients` row the service writes for it (columns of
 * src/db/migrations; the contact fields sealed as src/patients/patient-contact.ts
 * seals them), without id and timestamps, which the writer sets.
 */
export function benchPatientColumns(email: string): Record<string, string | number | null> {
  const sealed = sealedColumns(email);
  return {
    given_name: "Asha",
    family_name: benchFamilyName(email),
    birth_date: "1990-04-12",
    sex: "female",
    preferred_language: "en-IN",
    contact_sealed: sealed.contactSealed,
    email_index: sealed.emailIndex,
    data_key_wrapped: sealed.dataKeyWrapped,
    data_key_id: sealed.dataKeyId,
    version: 1,
    create_request_id: null,
  };
}

/** Digits of the counter in a bench email: fixed width, so every email has the same length. */
const counterDigits = 10;

/**
 * `bench.<prefix>.<n>@example.com` with `n` zero-padded to a fixed width: distinct
 * for every `n`, the same length for all, and lowercase (the service stores emails
 * lowercased). `prefix` keeps runs and targets apart, and lets the bench count rows.
 */
export function benchEmail(prefix: string, n: number): string {
  return `bench.${prefix}.${String(n).padStart(counterDigits, "0")}@example.com`;
}

/** The placeholder counter in a `benchEmail(prefix, 0)`, and where it starts within the email. */
export function emailCounterSpan(prefix: string): { readonly offset: number; readonly length: number } {
  return { offset: `bench.${prefix}.`.length, length: counterDigits };
}
