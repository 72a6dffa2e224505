import { randomUUID } from "node:crypto";

/**
 * A valid CreatePatient `patient` in protobuf JSON, with a random unique email.
 * An override set to `undefined` removes that field.
 */
export function newPatientJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const patient: Record<string, unknown> = {
    legalName: { givenName: "Asha", familyName: "Rao" },
    birthDate: { year: 1990, month: 4, day: 12 },
    sex: "SEX_FEMALE",
    contact: {
      email: `asha.${randomUUID()}@example.com`,
      phone: "+919812345678",
      address: { lines: ["12 MG Road"], locality: "Bengaluru", region: "KA", postalCode: "560001", regionCode: "IN" },
    },
    preferredLanguage: "en-IN",
    upiId: "asha.rao@okaxis",
    insurance: {
      provider: "Star Health",
      policyNumber: "P-123",
      memberId: "M-9",
      validUntil: { year: 2030, month: 1, day: 31 },
    },
    emergencyContacts: [{ displayName: "Ravi Rao", relationship: "spouse", phone: "+919800000001" }],
    ...overrides,
  };
  return JSON.parse(JSON.stringify(patient)) as Record<string, unknown>;
}
