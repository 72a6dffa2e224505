import { DriverException, type EntityManager } from "@mikro-orm/postgresql";
import pg from "pg";
import { type CallAudit, recordCallsWith } from "../audit/call-audit.ts";
import { alreadyExists, DomainError, notFound } from "../shared/domain-errors.ts";
import type { Patient } from "./patient.ts";
import type { PatientSealer, SealedColumns } from "./patient-contact.ts";
import { calendarDateToText, type PatientRecord, patientColumns, patientFromRecord } from "./patient-entity.ts";

/** A create checked and given its id and time, waiting to be written with the others of its turn. */
export interface PendingCreate {
  /** What the caller gets when the row is stored: everything but the database's answer is known. */
  readonly patient: Patient;
  /** The AIP-155 request id, when the caller sent one. */
  readonly requestId: string | undefined;
  /** Its contact, emergency and payment fields, sealed under its new data key, and the email's blind index. */
  readonly sealed: SealedColumns;
  /** The call's audit trail, to write the profile's creation entry in the INSERT's statement (`insertAudited`). */
  readonly audit?: CallAudit;
}

/** A row found by request id, with its email's blind index and whether it has been deleted since. */
type ReplayRecord = PatientRecord & {
  readonly create_request_id: string;
  readonly email_index: string;
  readonly deleted: boolean;
};

const resource = "Patient";

/** A `patients` row as the INSERT reads it from JSON, `updated_at` and `version` implied. */
interface Row {
  readonly id: string;
  readonly given_name: string;
  readonly family_name: string;
  readonly birth_date: string;
  readonly sex: string;
  readonly preferred_language: string;
  readonly contact_sealed: string;
  readonly email_index: string;
  readonly data_key_wrapped: string;
  readonly data_key_id: string;
  readonly created_at: string;
  readonly create_request_id: string | null;
}

/**
 * The batch as one JSON array, typed back into columns by `jsonb_to_recordset`. The
 * statement text is the same for every batch size, and the rows travel as one value:
 * outside a transaction as the parameter of a named statement (parsed and planned once
 * per connection); inside one through MikroORM, which inlines parameters as literals and
 * escapes strings character by character in JavaScript (~10 µs per row here), so there
 * the JSON goes as a Buffer, which Node writes as hex. The
 * contact fields arrive sealed (patient-contact.ts): the database never sees them in clear.
 *
 * `on conflict do nothing` has no target, so every unique index is an arbiter: the
 * request id's and the email blind index's (partial, live rows only). A row that conflicts with
 * a stored row, or with one inserted earlier by the same statement, is skipped
 * instead of failing the statement; `returning "id"` tells which rows went in.
 */
const insertSqlWith = (rows: string): string => {
  const types = {
    id: "uuid",
    given_name: "text",
    family_name: "text",
    birth_date: "date",
    sex: "text",
    preferred_language: "text",
    contact_sealed: "text",
    email_index: "text",
    data_key_wrapped: "text",
    data_key_id: "text",
    created_at: "timestamptz",
    create_request_id: "uuid",
  } satisfies Record<keyof Row, string>;
  const names = Object.keys(types).map((name) => `"${name}"`);
  const record = Object.entries(types).map(([name, type]) => `"${name}" ${type}`);
  return (
    `insert into "patients" (${names.join(", ")}, "updated_at", "version") ` +
    `select ${names.join(", ")}, "created_at", 1 ` +
    `from jsonb_to_recordset(${rows}) as r(${record.join(", ")}) ` +
    `on conflict do nothing returning "id"`
  );
};
/** For the pool (a named statement). */
const insertSql = insertSqlWith("$1::jsonb");
/**
 * The rows of `insertAudited` ($1), as the CTE of one statement with their creation
 * entries: no row is skipped here, so any conflict fails the statement as a whole.
 */
const insertAuditedCtes = `"inserted" as (${insertSqlWith("$1::jsonb").replace(" on conflict do nothing", "")})`;
/** For MikroORM, which inlines values as literals: the JSON goes as bytes (hex) and is converted back. */
const insertWithinSql = insertSqlWith("convert_from(?, 'UTF8')::jsonb");

/** Where the INSERT runs: a caller's transaction (`em`), or a named statement on the ORM's pool. */
export type InsertTarget = { readonly em: EntityManager } | { readonly pool: pg.Pool };

async function runInsert(target: InsertTarget, rows: string): Promise<{ id: string }[]> {
  if ("pool" in target) {
    return (await target.pool.query<{ id: string }>({ name: "patients-insert", text: insertSql, values: [rows] })).rows;
  }
  return target.em.execute<{ id: string }[]>(insertWithinSql, [Buffer.from(rows, "utf8")], "all");
}

/**
 * Writes the creates in one INSERT and settles each on its own: the stored profile,
 * the profile an earlier create with the same request id made (a replay), or the
 * error that create gets. One row's failure never fails the others:
 *
 * - a row skipped for its request id is a replay, answered from one follow-up read
 *   for the whole batch: NOT_FOUND when that profile was deleted since, and
 *   INVALID_ARGUMENT (REQUEST_ID_REUSED) when it was made for another email. Two
 *   creates of one batch with the same request id are one create and its replay;
 * - a row skipped otherwise lost its email to a live profile (perhaps one of the
 *   same batch): ALREADY_EXISTS (EMAIL_ALREADY_REGISTERED);
 * - when the database refuses the whole statement because of its data (a value too
 *   long, a check, a deadlock with a concurrent batch), each create is retried in a
 *   statement of its own, so only the bad one fails.
 */
export async function insertPatients(
  target: InsertTarget,
  em: () => EntityManager,
  creates: readonly PendingCreate[],
  sealer: PatientSealer,
): Promise<(Patient | Error)[]> {
  if ("pool" in target && (await insertAudited(creates))) return creates.map((create) => create.patient);
  let inserted: { id: string }[];
  try {
    inserted = await runInsert(target, rowsJson(creates));
  } catch (error) {
    if (creates.length === 1 || !isRefusalOfData(error)) return creates.map(() => asError(error));
    const alone = await Promise.all(creates.map((create) => insertPatients(target, em, [create], sealer)));
    return alone.map(([outcome]) => outcome as Patient | Error);
  }
  if (inserted.length === creates.length) return creates.map((create) => create.patient);
  const stored = new Set(inserted.map((row) => row.id));
  const skippedRequestIds = creates
    .filter((create) => create.requestId !== undefined && !stored.has(create.patient.id))
    .map((create) => create.requestId as string);
  const replays = await replayRecords(em(), skippedRequestIds);
  return creates.map((create) => {
    if (stored.has(create.patient.id)) return create.patient;
    const replay = create.requestId === undefined ? undefined : replays.get(create.requestId);
    return replay === undefined ? emailTaken() : replayed(replay, create.sealed.emailIndex, sealer);
  });
}

/**
 * Writes the creates and their creation entries in ONE statement through the audit log
 * (`recordWith`), so a profile never exists without its entry, when every create has
 * its call's audit trail. True when committed; false when nothing was written: a
 * conflict (an email or request id taken, a replay) or an audit chain moved by other
 * processes. The creates then take `insertPatients`' path, which tells each its
 * outcome, and their entries follow its commit.
 */
function insertAudited(creates: readonly PendingCreate[]): Promise<boolean> {
  const sink = creates[0]?.audit?.sink;
  // One statement goes to one sink: creates recorded elsewhere take the other path.
  const oneSink = creates.every((create) => create.audit?.sink === sink);
  return recordCallsWith(
    oneSink ? sink : undefined,
    creates.map(({ patient, audit }) => ({ audit, overrides: creationEntryOf(patient.id) })),
    () => ({ name: "patients-insert", ctes: insertAuditedCtes, last: "inserted", values: [rowsJson(creates)] }),
  );
}

/** What a profile's creation entry names: the new profile. */
export function creationEntryOf(patientId: string): { subjectPatientId: string; resource: string } {
  return { subjectPatientId: patientId, resource: `patients/${patientId}` };
}

/**
 * The rows as JSON, in the order the creates arrived, so that of two creates with the
 * same email or request id the earlier one is stored, as it would be without batching.
 * (Two batches in flight that share two emails in opposite orders could deadlock;
 * PostgreSQL then aborts one statement, and its rows are retried one by one.)
 */
function rowsJson(creates: readonly PendingCreate[]): string {
  const rows = creates.map(
    ({ patient, requestId, sealed }): Row => ({
      id: patient.id,
      given_name: patient.legalName.given,
      family_name: patient.legalName.family,
      birth_date: calendarDateToText(patient.birthDate),
      sex: patient.sex,
      preferred_language: patient.preferredLanguage,
      contact_sealed: sealed.contactSealed,
      email_index: sealed.emailIndex,
      data_key_wrapped: sealed.dataKeyWrapped,
      data_key_id: sealed.dataKeyId,
      created_at: patient.createTime.toISOString(),
      create_request_id: requestId ?? null,
    }),
  );
  return JSON.stringify(rows);
}

/** The stored rows of these request ids (deleted ones too), by request id; one query, none when there are none. */
async function replayRecords(em: EntityManager, requestIds: readonly string[]): Promise<Map<string, ReplayRecord>> {
  if (requestIds.length === 0) return new Map();
  const records = await em.execute<ReplayRecord[]>(
    `select ${patientColumns}, "create_request_id", "email_index", "deleted_at" is not null as "deleted" ` +
      `from "patients" where "create_request_id" in (?)`,
    [[...new Set(requestIds)]],
    "all",
  );
  return new Map(records.map((record) => [record.create_request_id, record]));
}

/** A retry's answer: the profile its request made, as it is now, if still live and made for the same email (by blind index). */
function replayed(record: ReplayRecord, emailIndex: string, sealer: PatientSealer): Patient | Error {
  // A retry must neither resurrect a deleted profile nor make a new one.
  if (record.deleted) return notFound(resource);
  if (record.email_index !== emailIndex) {
    const description = "was already used for a different request";
    return new DomainError("invalid-argument", "REQUEST_ID_REUSED", `This request_id ${description}.`, {
      violations: [{ field: "request_id", description }],
    });
  }
  try {
    return patientFromRecord(record, sealer.open(record));
  } catch (error) {
    // DATA_LOSS for this create alone, not the batch.
    return asError(error);
  }
}

/** ALREADY_EXISTS for an email a live profile has; the message does not repeat the address. */
export function emailTaken(): DomainError {
  return alreadyExists("EMAIL_ALREADY_REGISTERED", "A patient with this email address is already registered.");
}

/**
 * Whether PostgreSQL refused the statement for what it wrote (SQLSTATE classes 22
 * data exception, 23 integrity constraint, 40 transaction rollback such as a
 * deadlock), so that the rows alone may fare differently. A lost connection is not.
 */
function isRefusalOfData(error: unknown): boolean {
  const fromDatabase = error instanceof DriverException || error instanceof pg.DatabaseError;
  return fromDatabase && /^(22|23|40)/.test(String(error.code));
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
