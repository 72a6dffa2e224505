import type { AtomicChange } from "../audit/audit-batch-writer.ts";
import type pg from "pg";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { RecordKindName, RecordSourceName } from "./record-entity.ts";
import { appendFeedEntries, appendFeedEntry, feedCtes } from "./record-feed.ts";

type SqlValue = string | number | null | readonly string[];

/** One row of `medical_records`, as the driver returns it. */
export interface RecordRow {
  readonly id: string;
  readonly patient_id: string;
  readonly kind: RecordKindName;
  readonly effective_time: string | Date;
  readonly consultation_id: string | null;
  readonly source: RecordSourceName;
  readonly author: string;
  readonly author_role: string;
  readonly content_sealed: string;
  readonly data_key_wrapped: string;
  readonly data_key_id: string;
  readonly create_request_id: string;
  readonly create_fingerprint: string;
  readonly version: number;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
  readonly deleted_at: string | Date | null;
  readonly delete_reason_sealed: string | null;
}

const recordColumns =
  '"id", "patient_id", "kind", "effective_time", "consultation_id", "source", "author", "author_role", ' +
  '"content_sealed", "data_key_wrapped", "data_key_id", "create_request_id", "create_fingerprint", "version", ' +
  '"created_at", "updated_at", "deleted_at", "delete_reason_sealed"';
const liveByIdsSql = `select ${recordColumns} from "medical_records" where "id" = any($1::uuid[]) and "deleted_at" is null`;

/** The columns a new record's JSON carries (`recordsJson`), with their types. */
const newRecordTypes: Readonly<Record<string, string>> = {
  id: "uuid",
  patient_id: "uuid",
  kind: "text",
  effective_time: "timestamptz",
  consultation_id: "uuid",
  source: "text",
  author: "text",
  author_role: "text",
  content_sealed: "text",
  data_key_wrapped: "text",
  data_key_id: "text",
  create_request_id: "uuid",
  create_fingerprint: "text",
  created_at: "timestamptz",
};
const newRecordNames = Object.keys(newRecordTypes).map((name) => `"${name}"`);

/** `jsonb_to_recordset` of a batch of new records (`recordsJson`) given as `json`, with `extra` columns. */
function newRecordsFrom(json: string, extra = ""): string {
  const record = Object.entries(newRecordTypes).map(([name, type]) => `"${name}" ${type}`);
  return `jsonb_to_recordset(${json}) as r(${record.join(", ")}${extra})`;
}

/** The INSERT of new records: the columns of `recordsJson`, then version 1 and updated_at = created_at. */
const insertRecordsHead =
  `insert into "medical_records" (${newRecordNames.join(", ")}, "version", "updated_at") ` +
  `select ${newRecordNames.join(", ")}, 1, "created_at" from`;

/** The INSERT of a batch of new records, given as one JSON array (`insertMany`). */
const insertManySql =
  `${insertRecordsHead} ${newRecordsFrom("convert_from(?, 'UTF8')::jsonb")} ` +
  `on conflict on constraint "medical_records_create_request_unique" do nothing returning *`;

/**
 * The records of `insertChange` ($1) with their change-feed entries, as CTEs for one
 * statement. A request id already used fails it (unique violation): no row of the
 * batch is written. The feed is numbered after the rows are inserted, the order in
 * which the transaction of `insertMany` takes its locks.
 */
const insertChangeCtes =
  `"items" as (select * from ${newRecordsFrom("$1::jsonb", `, "ord" bigint`)}), ` +
  `"inserted" as (${insertRecordsHead} "items" returning 1), ` +
  `"feed_items" as (select "patient_id" as "p", "id" as "r", 'record' as "o", 'created' as "t", "created_at" as "at", "ord" ` +
  `from "items" where (select count(*) from "inserted") >= 0), ${feedCtes("feed_items")}`;

/**
 * The guard of `insertChange`: every patient of the batch exists and is not deleted,
 * read in the statement's snapshot. Liveness is counted, not filtered on, for the
 * plan's sake (see `livePatients`).
 */
const everyPatientLive =
  `(select count(*) filter (where p."deleted_at" is null) from "patients" p ` +
  `where p."id" in (select "patient_id" from "items")) = (select count(distinct "patient_id") from "items")`;

/**
 * New records as the JSON array `newRecordsFrom` reads: each the row it stores (dates
 * go as ISO text; the columns the INSERT does not read are ignored), with "ord", its
 * place among the batch's records of the same patient (1, 2, …) for the change feed.
 */
function recordsJson(rows: readonly NewRecordRow[]): string {
  const ordinal = new Map<string, number>();
  return JSON.stringify(
    rows.map((row) => {
      const ord = (ordinal.get(row.patientId) ?? 0) + 1;
      ordinal.set(row.patientId, ord);
      return { ...storedRowOf(row), ord };
    }),
  );
}

/** The row a new record is stored as, as the database would answer it (uuids in lower case). */
function storedRowOf(row: NewRecordRow): RecordRow {
  return {
    id: row.id.toLowerCase(),
    patient_id: row.patientId.toLowerCase(),
    kind: row.kind,
    effective_time: row.effectiveTime,
    consultation_id: row.consultationId?.toLowerCase() ?? null,
    source: row.source,
    author: row.author,
    author_role: row.authorRole,
    content_sealed: row.contentSealed,
    data_key_wrapped: row.dataKeyWrapped,
    data_key_id: row.dataKeyId,
    create_request_id: row.createRequestId.toLowerCase(),
    create_fingerprint: row.createFingerprint,
    version: 1,
    created_at: row.now,
    updated_at: row.now,
    deleted_at: null,
    delete_reason_sealed: null,
  };
}

/** A row to insert; the content is already sealed. */
export interface NewRecordRow {
  readonly id: string;
  readonly patientId: string;
  readonly kind: RecordKindName;
  readonly effectiveTime: Date;
  readonly consultationId: string | undefined;
  readonly source: RecordSourceName;
  readonly author: string;
  readonly authorRole: string;
  readonly contentSealed: string;
  readonly dataKeyWrapped: string;
  readonly dataKeyId: string;
  readonly createRequestId: string;
  readonly createFingerprint: string;
  readonly now: Date;
}

/** One entry of the timeline: a record of this table, or a consultation summary. */
export interface TimelineEntry {
  readonly origin: "record" | "summary";
  readonly id: string;
  readonly effectiveTime: Date;
  /** For a summary: its consultation. */
  readonly consultationId: string | null;
}

/** What ListRecords filters by; `after` is the page token's cursor. */
export interface TimelineQuery {
  readonly patientId: string;
  /** Stored kinds; empty with `summaries` false selects nothing but is never asked. */
  readonly kinds: readonly RecordKindName[] | undefined;
  /** Whether consultation summaries are part of the answer. */
  readonly summaries: boolean;
  readonly startTime: Date | undefined;
  readonly endTime: Date | undefined;
  readonly consultationId: string | undefined;
  readonly after: { readonly effectiveMs: number; readonly id: string } | undefined;
  readonly limit: number;
}

/**
 * SQL of the records context. `medical_records` is its own; `consultation_summaries`,
 * `consultations` and `doctor_accounts` belong to the consultations context and are
 * only read here (the timeline merges summaries in; care relationships are consultations).
 */
export class RecordRepository {
  /** The live (not deleted) record of a patient, or undefined. */
  async get(em: EntityManager, patientId: string, id: string): Promise<RecordRow | undefined> {
    return em.execute<RecordRow>(
      `select * from "medical_records" where "id" = ? and "patient_id" = ? and "deleted_at" is null`,
      [id, patientId],
      "get",
    );
  }

  /** The live records with these ids, whoever's they are (the caller checks the patient). */
  async liveByIds(em: EntityManager, ids: readonly string[]): Promise<RecordRow[]> {
    if (ids.length === 0) return [];
    return em.execute<RecordRow[]>(
      `select * from "medical_records" where "id" in (?) and "deleted_at" is null`,
      [ids],
      "all",
    );
  }

  /**
   * `liveByIds` as a named statement on the ORM's pool (src/db/native-pool.ts): GetRecord's
   * batched read. Its columns are named, so a column a later migration adds cannot
   * change the prepared statement's result type under it.
   */
  async liveByIdsPrepared(pool: pg.Pool, ids: readonly string[]): Promise<RecordRow[]> {
    if (ids.length === 0) return [];
    const result = await pool.query<RecordRow>({ name: "medical-records-by-ids", text: liveByIdsSql, values: [ids] });
    return result.rows;
  }

  /** The patient's live record, locked for a change until `em`'s transaction ends. */
  async lock(em: EntityManager, patientId: string, id: string): Promise<RecordRow | undefined> {
    return em.execute<RecordRow>(
      `select * from "medical_records" where "id" = ? and "patient_id" = ? and "deleted_at" is null for update`,
      [id, patientId],
      "get",
    );
  }

  /** The records CreateRecord calls with these patients' request ids made (even if since deleted). */
  async findByRequests(
    em: EntityManager,
    requests: readonly { patientId: string; requestId: string }[],
  ): Promise<RecordRow[]> {
    if (requests.length === 0) return [];
    return em.execute<RecordRow[]>(
      `select * from "medical_records" where ("patient_id", "create_request_id") in (${requests.map(() => "(?, ?)").join(", ")})`,
      requests.flatMap((request) => [request.patientId, request.requestId]),
      "all",
    );
  }

  /** The record a CreateRecord with this request id made (even if since deleted). */
  async findByRequest(em: EntityManager, patientId: string, requestId: string): Promise<RecordRow | undefined> {
    return em.execute<RecordRow>(
      `select * from "medical_records" where "patient_id" = ? and "create_request_id" = ?`,
      [patientId, requestId],
      "get",
    );
  }

  /** Inserts a record; false when a record with the same request id won a race. */
  async insert(em: EntityManager, row: NewRecordRow): Promise<boolean> {
    const inserted = await this.insertMany(em, [row]);
    return inserted.length === 1;
  }

  /**
   * Inserts rows in one statement, each with its `created` entry in the change feed;
   * a row whose patient already has a record with its request id is skipped (a retry).
   * Returns the rows inserted, as stored.
   */
  async insertMany(em: EntityManager, rows: readonly NewRecordRow[]): Promise<RecordRow[]> {
    if (rows.length === 0) return [];
    // One value for the whole batch: MikroORM inlines parameters as SQL literals, escaping
    // strings character by character in JavaScript, while a Buffer goes as hex.
    const inserted = await em.execute<RecordRow[]>(insertManySql, [Buffer.from(recordsJson(rows), "utf8")], "all");
    const byId = new Map(rows.map((row) => [row.id, row]));
    await appendFeedEntries(
      em,
      inserted.map((row) => ({
        patientId: row.patient_id,
        recordId: row.id,
        origin: "record",
        type: "created",
        at: (byId.get(row.id) as NewRecordRow).now,
      })),
    );
    return inserted;
  }

  /**
   * New records and their change-feed entries as one statement's data change, for the
   * audit log to commit with their entries (`AuditLog.recordWith`). Unlike
   * `insertMany`, a request id already used fails the whole batch.
   */
  insertChange(rows: readonly NewRecordRow[]): AtomicChange {
    return {
      name: "records-insert",
      ctes: insertChangeCtes,
      last: "fed",
      guard: everyPatientLive,
      values: [recordsJson(rows)],
    };
  }

  /** The row `insertChange` stores for `row`, as the database would answer it. */
  storedRowOf(row: NewRecordRow): RecordRow {
    return storedRowOf(row);
  }

  /** Replaces the amendable columns of a locked row and bumps its version. */
  async update(
    em: EntityManager,
    row: RecordRow,
    changes: { effectiveTime: Date; consultationId: string | undefined; contentSealed: string; now: Date },
  ): Promise<void> {
    await em.execute(
      `update "medical_records" set "effective_time" = ?, "consultation_id" = ?, "content_sealed" = ?, ` +
        `"version" = "version" + 1, "updated_at" = ? where "id" = ?`,
      [
        changes.effectiveTime.toISOString(),
        changes.consultationId ?? null,
        changes.contentSealed,
        changes.now.toISOString(),
        row.id,
      ],
      "run",
    );
    await appendChange(em, row.patient_id, row.id, "updated", changes.now);
  }

  /** Makes a locked row a tombstone (deleted_at set, version bumped); its ciphertext stays as it was. */
  async markDeleted(em: EntityManager, row: RecordRow, now: Date, reasonSealed: string | null): Promise<void> {
    await em.execute(
      `update "medical_records" set "deleted_at" = ?, "updated_at" = ?, "delete_reason_sealed" = ?, ` +
        `"version" = "version" + 1 where "id" = ?`,
      [now.toISOString(), now.toISOString(), reasonSealed, row.id],
      "run",
    );
    await appendChange(em, row.patient_id, row.id, "deleted", now);
  }

  /** The record of a patient, live or a tombstone, or undefined. */
  async getAny(em: EntityManager, patientId: string, id: string): Promise<RecordRow | undefined> {
    return em.execute<RecordRow>(
      `select * from "medical_records" where "id" = ? and "patient_id" = ?`,
      [id, patientId],
      "get",
    );
  }

  /** The records with these ids, live or tombstones (one query for a page of the change feed). */
  async manyAny(em: EntityManager, patientId: string, ids: readonly string[]): Promise<RecordRow[]> {
    if (ids.length === 0) return [];
    return em.execute<RecordRow[]>(
      `select * from "medical_records" where "patient_id" = ? and "id" in (?)`,
      [patientId, ids],
      "all",
    );
  }

  /** The live records of these kinds, newest effective time first, at most `limit` (the offline bundle). */
  async liveOfKinds(
    em: EntityManager,
    patientId: string,
    kinds: readonly RecordKindName[],
    limit: number,
  ): Promise<RecordRow[]> {
    return em.execute<RecordRow[]>(
      `select * from "medical_records" where "patient_id" = ? and "kind" in (?) and "deleted_at" is null ` +
        `order by "effective_time" desc, "id" desc limit ?`,
      [patientId, kinds, limit],
      "all",
    );
  }

  /** The consultation of a summary record of this patient, or undefined. */
  async summaryConsultation(em: EntityManager, patientId: string, summaryId: string): Promise<string | undefined> {
    const row = await em.execute<{ consultation_id: string }>(
      `select "consultation_id" from "consultation_summaries" where "id" = ? and "patient_id" = ?`,
      [summaryId, patientId],
      "get",
    );
    return row?.consultation_id;
  }

  /**
   * One page of the timeline, newest effective time first (ties by id, newest first):
   * the live records of `medical_records` and, when asked, the consultation summaries
   * (effective at the consultation's actual end, else its start).
   */
  async timeline(em: EntityManager, query: TimelineQuery): Promise<TimelineEntry[]> {
    const branches: string[] = [];
    const params: SqlValue[] = [];
    if (query.kinds === undefined || query.kinds.length > 0) {
      let sql = `select 'record' as "origin", r."id", r."effective_time", r."consultation_id" from "medical_records" r where r."patient_id" = ? and r."deleted_at" is null`;
      params.push(query.patientId);
      if (query.kinds !== undefined) {
        sql += ` and r."kind" in (?)`;
        params.push(query.kinds);
      }
      if (query.consultationId !== undefined) {
        sql += ` and r."consultation_id" = ?`;
        params.push(query.consultationId);
      }
      branches.push(sql);
    }
    if (query.summaries) {
      let sql =
        `select 'summary' as "origin", s."id", coalesce(c."actual_end_time", c."start_time") as "effective_time", s."consultation_id" ` +
        `from "consultation_summaries" s join "consultations" c on c."id" = s."consultation_id" where s."patient_id" = ?`;
      params.push(query.patientId);
      if (query.consultationId !== undefined) {
        sql += ` and s."consultation_id" = ?`;
        params.push(query.consultationId);
      }
      branches.push(sql);
    }
    if (branches.length === 0) return [];
    const conditions: string[] = [];
    if (query.startTime !== undefined) {
      conditions.push(`t."effective_time" >= ?`);
      params.push(query.startTime.toISOString());
    }
    if (query.endTime !== undefined) {
      conditions.push(`t."effective_time" < ?`);
      params.push(query.endTime.toISOString());
    }
    if (query.after !== undefined) {
      conditions.push(`(t."effective_time", t."id") < (?, ?)`);
      params.push(new Date(query.after.effectiveMs).toISOString(), query.after.id);
    }
    params.push(query.limit);
    const where = conditions.length === 0 ? "" : `where ${conditions.join(" and ")}`;
    const rows = await em.execute<
      { origin: "record" | "summary"; id: string; effective_time: string | Date; consultation_id: string | null }[]
    >(
      `select * from (${branches.join(" union all ")}) t ${where} order by t."effective_time" desc, t."id" desc limit ?`,
      params,
      "all",
    );
    return rows.map((row) => ({
      origin: row.origin,
      id: row.id,
      effectiveTime: new Date(row.effective_time),
      consultationId: row.consultation_id,
    }));
  }

  /** The live records with these ids (one query for a page). */
  async many(em: EntityManager, patientId: string, ids: readonly string[]): Promise<RecordRow[]> {
    if (ids.length === 0) return [];
    return em.execute<RecordRow[]>(
      `select * from "medical_records" where "patient_id" = ? and "id" in (?) and "deleted_at" is null`,
      [patientId, ids],
      "all",
    );
  }

  /** Which of these record ids exist for the patient (live records or summaries). */
  async existing(em: EntityManager, patientId: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await em.execute<{ id: string }[]>(
      `select "id" from "medical_records" where "patient_id" = ? and "id" in (?) and "deleted_at" is null ` +
        `union select "id" from "consultation_summaries" where "patient_id" = ? and "id" in (?)`,
      [patientId, ids, patientId, ids],
      "all",
    );
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Which of these patients have a live profile. Liveness is checked on the rows read
   * by id, not in the WHERE clause, for the plan's sake (see `byIdsSql` in patient-repository.ts).
   */
  async livePatients(em: EntityManager, patientIds: readonly string[]): Promise<Set<string>> {
    if (patientIds.length === 0) return new Set();
    const rows = await em.execute<{ id: string; live: boolean }[]>(
      `select "id", "deleted_at" is null as "live" from "patients" where "id" in (?)`,
      [patientIds],
      "all",
    );
    return new Set(rows.filter((row) => row.live).map((row) => row.id));
  }

  async patientExists(em: EntityManager, patientId: string): Promise<boolean> {
    const row = await em.execute<{ found: number }>(
      `select 1 as "found" from "patients" where "id" = ? and "deleted_at" is null`,
      [patientId],
      "get",
    );
    return row !== undefined;
  }

  /** The consultation's patient and doctor, or undefined when there is none. */
  async consultation(
    em: EntityManager,
    consultationId: string,
  ): Promise<{ patientId: string; doctorId: string; state: string } | undefined> {
    const row = await em.execute<{ patient_id: string; doctor_id: string; state: string }>(
      `select "patient_id", "doctor_id", "state" from "consultations" where "id" = ?`,
      [consultationId],
      "get",
    );
    return row === undefined ? undefined : { patientId: row.patient_id, doctorId: row.doctor_id, state: row.state };
  }

  /**
   * Whether the doctor has a care relationship with the patient: a consultation with
   * them that was booked and not cancelled (scheduled, ongoing, completed, or a no-show).
   */
  async hasCareRelationship(em: EntityManager, patientId: string, doctorId: string): Promise<boolean> {
    const row = await em.execute<{ found: number }>(
      `select 1 as "found" from "consultations" where "patient_id" = ? and "doctor_id" = ? ` +
        `and "state" in ('scheduled', 'ongoing', 'completed', 'no_show') limit 1`,
      [patientId, doctorId],
      "get",
    );
    return row !== undefined;
  }
}

/** A change of a `medical_records` row, numbered in the patient's change feed in the caller's transaction. */
async function appendChange(
  em: EntityManager,
  patientId: string,
  recordId: string,
  type: "created" | "updated" | "deleted",
  at: Date,
): Promise<void> {
  await appendFeedEntry(em, patientId, recordId, "record", type, at);
}
