import { fromJson } from "@bufbuild/protobuf";
import { type Patient, PatientSchema } from "../gen/telemed/patient/v1/patient_pb.js";
import { newPatientJson } from "../test/support/patient-fixtures.ts";

/**
 * The profile every bench create stores: the tests' complete profile (address,
 * insurance, an emergency contact), with only the email changed.
 */
export function benchPatient(email: string): Patient {
  const json = newPatientJson();
  return fromJson(PatientSchema, { ...json, contact: { ...(json.contact as object), email } } as never);
}

/**
 * The same profile as the `patients` row the service writes for it (columns of
 * src/db/migrations, jsonb values shaped as src/patients/patient-entity.ts stores
 * them), without id and timestamps, which the writer sets.
 */
export function benchPatientColumns(email: string): Record<string, string | number | null> {
  return {
    given_name: "Asha",
    family_name: "Rao",
    birth_date: "1990-04-12",
    sex: "female",
    email,
    phone: "+919812345678",
    preferred_language: "en-IN",
    upi_id: "asha.rao@okaxis",
    address: JSON.stringify({
      lines: ["12 MG Road"],
      locality: "Bengaluru",
      region: "KA",
      postalCode: "560001",
      regionCode: "IN",
    }),
    insurance: JSON.stringify({
      provider: "Star Health",
      policyNumber: "P-123",
      memberId: "M-9",
      validUntil: { year: 2030, month: 1, day: 31 },
    }),
    emergency_contacts: JSON.stringify([{ displayName: "Ravi Rao", relationship: "spouse", phone: "+919800000001" }]),
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
