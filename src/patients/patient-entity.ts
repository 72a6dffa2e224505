import { defineEntity, p } from "@mikro-orm/core";
import type { CalendarDate, Patient, PatientFields, Sex } from "./patient.ts";
import { sexes } from "./patient.ts";
import type { SealedFields } from "./patient-contact.ts";

/**
 * The `patients` table. The schema lives here (and in the committed migrations, which
 * must agree with it: test/db/schema-drift.test.ts checks). The repository maps rows
 * to the plain `Patient` type, so nothing outside src/patients and src/db sees this.
 *
 * Column choices:
 * - `id` is a UUIDv7 made in code (src/shared/uuid-v7.ts), so an INSERT needs no
 *   RETURNING round trip and ids sort by creation time.
 * - Names, birth date, sex and language are columns in clear. The contact details
 *   (email, phone, address), emergency contacts, UPI id and insurance are sealed
 *   together in `contact_sealed` with the row's own data key (envelope encryption,
 *   patient-contact.ts), which is stored wrapped by a key-encryption key in
 *   `data_key_wrapped` (its KEK's id in `data_key_id`, indexed for key rotation).
 * - `email_index` is the email's blind index (an HMAC under its own key): the unique
 *   index and look-ups by email use it, never the address.
 * - Timestamps are `timestamptz(3)`: JavaScript dates hold milliseconds, and the
 *   list cursor carries `created_at`, so the column must round-trip through a Date
 *   exactly or keyset paging would skip or repeat rows.
 * - `deleted_at` makes delete a soft delete: the row stays for what the law needs
 *   (retention, the audit trail of a later issue) but every read filters it out, and
 *   the partial unique index on the email's blind index frees the address for a new profile.
 * - `create_request_id` is the AIP-155 request id of the create that made the row;
 *   its unique index turns a retried create into a conflict the repository replays.
 */
export const PatientEntity = defineEntity({
  name: "Patient",
  tableName: "patients",
  properties: {
    id: p.uuid().primary(),
    givenName: p.string().length(100),
    familyName: p.string().length(100),
    /** `YYYY-MM-DD`: MikroORM maps `date` columns to strings, which avoids time-zone shifts. */
    birthDate: p.date(),
    sex: p.enum(sexes),
    preferredLanguage: p.string().length(35),
    /** Email, phone, address, emergency contacts, UPI id and insurance: JSON, sealed (AES-256-GCM). */
    contactSealed: p.text(),
    /** HMAC-SHA-256 (hex) of the trimmed, lower-cased email under BLIND_INDEX_KEY_FILE. */
    emailIndex: p.string().length(64),
    dataKeyWrapped: p.text(),
    dataKeyId: p.string().length(32).index("patients_data_key_idx"),
    /** Optimistic lock: every change bumps it, and a write guarded by a stale one matches no row. */
    version: p.integer().version(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    deletedAt: p.datetime(3).nullable(),
    createRequestId: p.uuid().nullable().unique("patients_create_request_id_unique"),
  },
  uniques: [
    // Unique among live profiles only, so the address is free again after a delete.
    { name: "patients_email_index_live_unique", properties: ["emailIndex"], where: "deleted_at is null" },
  ],
  indexes: [
    // Serves List: newest first, keyset on (created_at, id), live rows only.
    {
      name: "patients_created_at_id_live_idx",
      columns: [
        { name: "created_at", sort: "desc" },
        { name: "id", sort: "desc" },
      ],
      where: "deleted_at is null",
    },
  ],
});

/** Every column a read returns, in the order of `PatientRecord`. */
export const patientColumns =
  '"id", "given_name", "family_name", "birth_date", "sex", "preferred_language", "contact_sealed", ' +
  '"data_key_wrapped", "version", "created_at", "updated_at"';

/**
 * A row as `em.execute` returns it. MikroORM's type parsers leave `date` and
 * `timestamptz` as text (so no time zone shifts a birthday).
 */
export interface PatientRecord {
  readonly id: string;
  readonly given_name: string;
  readonly family_name: string;
  readonly birth_date: string;
  readonly sex: Sex;
  readonly preferred_language: string;
  readonly contact_sealed: string;
  readonly data_key_wrapped: string;
  readonly version: number;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
}

/**
 * A row and its opened fields to the domain type, by hand: GetPatient's hot path,
 * where the ORM's find and hydration cost more than the query.
 */
export function patientFromRecord(record: PatientRecord, sealed: SealedFields): Patient {
  return {
    id: record.id,
    legalName: { given: record.given_name, family: record.family_name },
    birthDate: calendarDateFromText(record.birth_date),
    sex: record.sex,
    contact: { email: sealed.email, phone: sealed.phone, address: sealed.address ?? undefined },
    preferredLanguage: record.preferred_language,
    upiId: sealed.upiId,
    insurance: sealed.insurance ?? undefined,
    emergencyContacts: sealed.emergencyContacts,
    createTime: toDate(record.created_at),
    updateTime: toDate(record.updated_at),
    version: record.version,
  };
}

/** A value `em.execute` can inline into SQL: MikroORM quotes strings and passes numbers and null. */
export type SqlValue = string | number | null;

/**
 * The clear columns that hold the given fields, with their SQL values. Only the fields
 * present as keys are included, which is what lets an update change exactly the
 * fields its mask names. An undefined `birthDate` is skipped: callers reject it
 * before. The sealed fields (contact, UPI id, insurance, emergency contacts) are not
 * here: they change together, sealed again (patient-contact.ts).
 */
export function clearColumnsOf(fields: Partial<PatientFields>): Map<string, SqlValue> {
  const columns = new Map<string, SqlValue>();
  if (fields.legalName !== undefined) {
    columns.set("given_name", fields.legalName.given);
    columns.set("family_name", fields.legalName.family);
  }
  if (fields.birthDate !== undefined) columns.set("birth_date", calendarDateToText(fields.birthDate));
  if (fields.sex !== undefined) columns.set("sex", fields.sex);
  if (fields.preferredLanguage !== undefined) columns.set("preferred_language", fields.preferredLanguage);
  return columns;
}

/** `1990-04-02` to `{year: 1990, month: 4, day: 2}`. */
function calendarDateFromText(text: string): CalendarDate {
  return { year: Number(text.slice(0, 4)), month: Number(text.slice(5, 7)), day: Number(text.slice(8, 10)) };
}

/** `{year: 1990, month: 4, day: 2}` to `1990-04-02`. */
export function calendarDateToText(date: CalendarDate): string {
  const pad = (value: number, width: number) => String(value).padStart(width, "0");
  return `${pad(date.year, 4)}-${pad(date.month, 2)}-${pad(date.day, 2)}`;
}

/** PostgreSQL's `2026-11-28 10:17:22.78+00`; MikroORM parses it the same way. */
function toDate(value: string | Date): Date {
  return value instanceof Date ? value : new Date(value);
}
