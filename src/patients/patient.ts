/**
 * The patient profile as the domain sees it (RQ-PT002). Plain data: no generated
 * protobuf types and no ORM here, so rules and use cases can be tested without I/O.
 * The RPC layer maps it to and from `telemed.patient.v1.Patient`; the repository maps
 * it to and from the `patients` table.
 */

/** Sex recorded for clinical purposes. `unspecified` means "not recorded". */
export type Sex = "unspecified" | "female" | "male" | "other" | "undisclosed";

/** Every value of `Sex`, for validation and for the database check constraint. */
export const sexes: readonly Sex[] = ["unspecified", "female", "male", "other", "undisclosed"];

/** A calendar date without a time zone (a birthday is the same day everywhere). */
export interface CalendarDate {
  readonly year: number;
  /** 1-12. */
  readonly month: number;
  /** 1-31. */
  readonly day: number;
}

/** A person's legal name as on an identity document. */
export interface PersonName {
  readonly given: string;
  /** Empty for people who have a single name. */
  readonly family: string;
}

/** A postal address. */
export interface PostalAddress {
  /** Street lines, most specific first. */
  readonly lines: readonly string[];
  readonly locality: string;
  readonly region: string;
  readonly postalCode: string;
  /** ISO 3166-1 alpha-2, for example `IN`. */
  readonly regionCode: string;
}

/** How to reach the patient. */
export interface ContactDetails {
  /** Stored lowercased: email is unique across live profiles regardless of case. */
  readonly email: string;
  /** E.164, for example `+919812345678`; empty when not given. */
  readonly phone: string;
  readonly address: PostalAddress | undefined;
}

/** A health insurance policy. */
export interface Insurance {
  readonly provider: string;
  readonly policyNumber: string;
  readonly memberId: string;
  /** Last day the policy covers, when the card says. */
  readonly validUntil?: CalendarDate | undefined;
}

/** Someone to call when the patient is in an emergency. */
export interface EmergencyContact {
  readonly displayName: string;
  readonly relationship: string;
  /** E.164. */
  readonly phone: string;
}

/**
 * The fields of a profile a client may set. `birthDate` is optional only because a
 * request may omit it: `profileViolations` (patient-rules.ts) rejects such a profile,
 * and the repository refuses to store one.
 */
export interface PatientFields {
  readonly legalName: PersonName;
  readonly birthDate: CalendarDate | undefined;
  readonly sex: Sex;
  readonly contact: ContactDetails;
  /** BCP 47 tag, for example `en-IN`; empty when not given. */
  readonly preferredLanguage: string;
  /** UPI virtual payment address, `handle@provider`; empty when not given. */
  readonly upiId: string;
  readonly insurance: Insurance | undefined;
  /** In order of preference. */
  readonly emergencyContacts: readonly EmergencyContact[];
}

/** What a create request carries, before validation. */
export type PatientDraft = PatientFields;

/** A stored patient profile. */
export interface Patient extends PatientFields {
  /** UUIDv7 assigned by the service; the resource name is `patients/{id}`. */
  readonly id: string;
  readonly birthDate: CalendarDate;
  readonly createTime: Date;
  readonly updateTime: Date;
  /** Starts at 1 and grows by one on every change; the RPC layer turns it into an etag (AIP-154). */
  readonly version: number;
}
