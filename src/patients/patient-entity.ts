import { defineEntity, p } from "@mikro-orm/core";
import type {
  CalendarDate,
  EmergencyContact,
  Insurance,
  Patient,
  PatientFields,
  PostalAddress,
  Sex,
} from "./patient.ts";
import { sexes } from "./patient.ts";

/**
 * The `patients` table. The schema lives here (and in the committed migrations, which
 * must agree with it: test/db/schema-drift.test.ts checks). The repository maps rows
 * to the plain `Patient` type, so nothing outside src/patients and src/db sees this.
 *
 * Column choices:
 * - `id` is a UUIDv7 made in code (src/shared/uuid-v7.ts), so an INSERT needs no
 *   RETURNING round trip and ids sort by creation time.
 * - Names, birth date, sex, email, phone, language and UPI id are columns: they carry
 *   constraints and are what searches and reports filter on. Address, insurance and
 *   emergency contacts are jsonb: read and written whole, never queried by their parts.
 * - Timestamps are `timestamptz(3)`: JavaScript dates hold milliseconds, and the
 *   list cursor carries `created_at`, so the column must round-trip through a Date
 *   exactly or keyset paging would skip or repeat rows.
 * - `deleted_at` makes delete a soft delete: the row stays for what the law needs
 *   (retention, the audit trail of a later issue) but every read filters it out, and
 *   the partial unique index on email frees the address for a new profile.
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
    /** Lowercased, and a check keeps it so: uniqueness must not depend on case. */
    email: p.string().length(254).check("email = lower(email)"),
    phone: p.string().length(16),
    preferredLanguage: p.string().length(35),
    upiId: p.string().length(255),
    address: p.json<PostalAddress>().nullable(),
    insurance: p.json<Insurance>().nullable(),
    emergencyContacts: p.json<EmergencyContact[]>(),
    /** Optimistic lock: every change bumps it, and a write guarded by a stale one matches no row. */
    version: p.integer().version(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    deletedAt: p.datetime(3).nullable(),
    createRequestId: p.uuid().nullable().unique("patients_create_request_id_unique"),
  },
  uniques: [
    // Unique among live profiles only, so the address is free again after a delete.
    { name: "patients_email_live_unique", properties: ["email"], where: "deleted_at is null" },
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
  '"id", "given_name", "family_name", "birth_date", "sex", "email", "phone", "preferred_language", "upi_id", ' +
  '"address", "insurance", "emergency_contacts", "version", "created_at", "updated_at"';

/**
 * A row as `em.execute` returns it. The pg driver parses jsonb; MikroORM's type
 * parsers leave `date` and `timestamptz` as text (so no time zone shifts a birthday).
 */
export interface PatientRecord {
  readonly id: string;
  readonly given_name: string;
  readonly family_name: string;
  readonly birth_date: string;
  readonly sex: Sex;
  readonly email: string;
  readonly phone: string;
  readonly preferred_language: string;
  readonly upi_id: string;
  readonly address: PostalAddress | null;
  readonly insurance: Insurance | null;
  readonly emergency_contacts: EmergencyContact[];
  readonly version: number;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
}

/** A row to the domain type, by hand: GetPatient's hot path, where the ORM's find and hydration cost more than the query. */
export function patientFromRecord(record: PatientRecord): Patient {
  return {
    id: record.id,
    legalName: { given: record.given_name, family: record.family_name },
    birthDate: calendarDateFromText(record.birth_date),
    sex: record.sex,
    contact: { email: record.email, phone: record.phone, address: record.address ?? undefined },
    preferredLanguage: record.preferred_language,
    upiId: record.upi_id,
    insurance: record.insurance ?? undefined,
    emergencyContacts: record.emergency_contacts,
    createTime: toDate(record.created_at),
    updateTime: toDate(record.updated_at),
    version: record.version,
  };
}

/** A value `em.execute` can inline into SQL: MikroORM quotes strings and passes numbers and null. */
export type SqlValue = string | number | null;

/**
 * The columns that hold the given fields, with their SQL values. Only the fields
 * present as keys are included, which is what lets an update change exactly the
 * fields its mask names (nested values such as `contact` are replaced whole; the
 * caller merges a nested mask first). An undefined `birthDate` is skipped: callers
 * reject it before. jsonb values are serialised here, because MikroORM would render
 * an array parameter as a comma-separated list.
 */
export function columnsOf(fields: Partial<PatientFields>): Map<string, SqlValue> {
  const columns = new Map<string, SqlValue>();
  if (fields.legalName !== undefined) {
    columns.set("given_name", fields.legalName.given);
    columns.set("family_name", fields.legalName.family);
  }
  if (fields.birthDate !== undefined) columns.set("birth_date", calendarDateToText(fields.birthDate));
  if (fields.sex !== undefined) columns.set("sex", fields.sex);
  if (fields.contact !== undefined) {
    columns.set("email", fields.contact.email.toLowerCase());
    columns.set("phone", fields.contact.phone);
    columns.set("address", fields.contact.address === undefined ? null : JSON.stringify(fields.contact.address));
  }
  if (fields.preferredLanguage !== undefined) columns.set("preferred_language", fields.preferredLanguage);
  if (fields.upiId !== undefined) columns.set("upi_id", fields.upiId);
  // `insurance: undefined` present as a key means "remove the insurance".
  if ("insurance" in fields) {
    columns.set("insurance", fields.insurance === undefined ? null : JSON.stringify(fields.insurance));
  }
  if (fields.emergencyContacts !== undefined) {
    columns.set("emergency_contacts", JSON.stringify(fields.emergencyContacts));
  }
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
