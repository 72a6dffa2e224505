import type { EntityManager } from "@mikro-orm/postgresql";
import { invalidArgument } from "../shared/domain-errors.ts";
import type { ChangeOriginName, ChangeTypeName } from "./record-sync-entities.ts";

/** One entry of a page of the change feed: a record at its latest change. */
export interface FeedEntry {
  readonly seq: number;
  readonly recordId: string;
  readonly origin: ChangeOriginName;
  /** The latest change of the record. */
  readonly type: ChangeTypeName;
  /** Whether the record was created after the cursor (so the client has never seen it). */
  readonly createdSince: boolean;
  readonly changedAt: Date;
}

/** What the ledger of uploaded offline changes remembers of one. */
export interface PushLedgerEntry {
  readonly outcome: "applied" | "conflict";
  readonly recordId: string;
  readonly conflictRecordId: string | null;
}

const cursorPrefix = "rf1";

/**
 * The opaque cursor of a patient's change feed: the sequence number of the last change
 * the client has, bound to the patient. Not secret (it names no content); not
 * forgeable into anything useful either: another patient's, a malformed one or one
 * ahead of the feed is INVALID_ARGUMENT.
 */
export function encodeCursor(patientId: string, seq: number): string {
  return Buffer.from(`${cursorPrefix}:${patientId}:${seq}`, "utf8").toString("base64url");
}

/** The sequence number of a cursor made by `encodeCursor` for this patient; 0 for an empty cursor. */
export function decodeCursor(patientId: string, cursor: string): number {
  if (cursor === "") return 0;
  const text = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, "base64url").toString("utf8") : "";
  const match = /^rf1:([0-9a-f-]{36}):(0|[1-9][0-9]{0,14})$/.exec(text);
  // Only the canonical form: trailing bits or characters base64 would ignore are a forgery too.
  if (match === null || match[1] !== patientId || encodeCursor(patientId, Number(match[2])) !== cursor) {
    throw badCursor();
  }
  return Number(match[2]);
}

export function badCursor() {
  return invalidArgument("cursor", "not a cursor of this patient's change feed; sync again from a new offline bundle");
}

/** One change to number in a patient's feed. */
export interface NewFeedEntry {
  readonly patientId: string;
  readonly recordId: string;
  readonly origin: ChangeOriginName;
  readonly type: ChangeTypeName;
  readonly at: Date;
}

/**
 * Numbers changes of records in their patients' change feeds, in the caller's
 * transaction and in one statement: the entries commit with the changes or not at
 * all, each patient's in the order given. Taking the numbers updates each patient's
 * `record_feed_heads` row (in patient order, so concurrent writers lock alike), whose
 * lock is held until the transaction ends, so one patient's changes commit in sequence
 * order and a client that has seen number n never later misses a change numbered below n.
 */
export async function appendFeedEntries(em: EntityManager, entries: readonly NewFeedEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const ordinal = new Map<string, number>();
  const items = entries.map((entry) => {
    const ord = (ordinal.get(entry.patientId) ?? 0) + 1;
    ordinal.set(entry.patientId, ord);
    return { p: entry.patientId, r: entry.recordId, o: entry.origin, t: entry.type, at: entry.at.toISOString(), ord };
  });
  await em.execute(
    `with "items" as (select * from jsonb_to_recordset(?::jsonb) as i("p" uuid, "r" uuid, "o" text, "t" text, "at" timestamptz, "ord" bigint)), ` +
      `${feedCtes("items")} select count(*) from "fed"`,
    [JSON.stringify(items)],
    "run",
  );
}

/**
 * CTEs that number the changes of the CTE `items` (columns "p" patient, "r" record,
 * "o" origin, "t" type, "at", "ord": 1, 2, … within each patient) and insert them;
 * the last, "fed", returns a row per change. Each patient's head moves by its count n,
 * and its entries take last_seq - n + 1 .. last_seq.
 */
export function feedCtes(items: string): string {
  return (
    `"counts" as (select "p", count(*) as "n" from "${items}" group by "p"), ` +
    `"heads" as (insert into "record_feed_heads" ("patient_id", "last_seq") select "p", "n" from "counts" order by "p" ` +
    `on conflict ("patient_id") do update set "last_seq" = "record_feed_heads"."last_seq" + excluded."last_seq" ` +
    `returning "patient_id", "last_seq"), ` +
    `"fed" as (insert into "record_changes" ("patient_id", "seq", "record_id", "origin", "type", "changed_at") ` +
    `select i."p", h."last_seq" - c."n" + i."ord", i."r", i."o", i."t", i."at" ` +
    `from "${items}" i join "counts" c on c."p" = i."p" join "heads" h on h."patient_id" = i."p" returning 1)`
  );
}

/** One change, as `appendFeedEntries`. */
export async function appendFeedEntry(
  em: EntityManager,
  patientId: string,
  recordId: string,
  origin: ChangeOriginName,
  type: ChangeTypeName,
  at: Date,
): Promise<void> {
  await appendFeedEntries(em, [{ patientId, recordId, origin, type, at }]);
}

/** Summaries attached or changed since their last feed entry (or with none yet). */
const pendingSummaries =
  `select s."id", s."updated_at", exists (select 1 from "record_changes" e where e."patient_id" = s."patient_id" ` +
  `and e."record_id" = s."id") as "known" from "consultation_summaries" s where s."patient_id" = ? ` +
  `and not exists (select 1 from "record_changes" c where c."patient_id" = s."patient_id" and c."record_id" = s."id" ` +
  `and c."changed_at" >= s."updated_at") order by s."updated_at", s."id"`;

/**
 * SQL of the change feed (`record_changes`, numbered per patient by `record_feed_heads`;
 * see Migration20261129110000_create_record_sync) and of the upload ledger (`record_pushes`).
 */
export class RecordFeed {
  /**
   * Brings the patient's consultation summaries into the feed. They are written by the
   * consultations context, which knows nothing of the feed, so they enter it when it is
   * read (a pull or a bundle): a summary attached or amended since its last entry gets
   * a new one, numbered after everything a client may have seen, so nobody misses it.
   */
  async catchUpSummaries(em: EntityManager, patientId: string): Promise<void> {
    const pending = await em.execute<unknown[]>(pendingSummaries, [patientId], "all");
    if (pending.length === 0) return;
    await em.transactional(async (tx) => {
      // The head's lock first, so concurrent readers do not both add the same summary.
      await tx.execute(
        `insert into "record_feed_heads" ("patient_id", "last_seq") values (?, 0) ` +
          `on conflict ("patient_id") do update set "last_seq" = "record_feed_heads"."last_seq"`,
        [patientId],
        "run",
      );
      const rows = await tx.execute<{ id: string; updated_at: string | Date; known: boolean }[]>(
        pendingSummaries,
        [patientId],
        "all",
      );
      for (const row of rows) {
        const type = row.known ? "updated" : "created";
        await appendFeedEntry(tx, patientId, row.id, "summary", type, new Date(row.updated_at));
      }
    });
  }

  /** The patient's last sequence number; 0 before their first change. */
  async head(em: EntityManager, patientId: string): Promise<number> {
    const row = await em.execute<{ last_seq: string | number }>(
      `select "last_seq" from "record_feed_heads" where "patient_id" = ?`,
      [patientId],
      "get",
    );
    return row === undefined ? 0 : Number(row.last_seq);
  }

  /**
   * The records changed after `after`, each once at its latest change, in sequence
   * (commit) order: a record changed twice while the client was away is handed over
   * once, as it is now, at the place of its last change. At most `limit`.
   */
  async page(em: EntityManager, patientId: string, after: number, limit: number): Promise<FeedEntry[]> {
    const rows = await em.execute<
      {
        seq: string | number;
        record_id: string;
        origin: ChangeOriginName;
        type: ChangeTypeName;
        created_since: boolean;
        changed_at: string | Date;
      }[]
    >(
      `select c."seq", c."record_id", c."origin", c."type", c."changed_at", ` +
        `exists (select 1 from "record_changes" k where k."patient_id" = c."patient_id" and k."record_id" = c."record_id" ` +
        `and k."seq" > ? and k."type" = 'created') as "created_since" ` +
        `from "record_changes" c where c."patient_id" = ? and c."seq" > ? ` +
        `and not exists (select 1 from "record_changes" l where l."patient_id" = c."patient_id" ` +
        `and l."record_id" = c."record_id" and l."seq" > c."seq") ` +
        `order by c."seq" limit ?`,
      [after, patientId, after, limit],
      "all",
    );
    return rows.map((row) => ({
      seq: Number(row.seq),
      recordId: row.record_id,
      origin: row.origin,
      type: row.type,
      createdSince: row.created_since,
      changedAt: new Date(row.changed_at),
    }));
  }

  /** What became of an uploaded change, if it was applied (or kept as a conflict) before. */
  async pushed(em: EntityManager, patientId: string, clientId: string): Promise<PushLedgerEntry | undefined> {
    const row = await em.execute<{ outcome: "applied" | "conflict"; record_id: string; conflict_record_id: string }>(
      `select "outcome", "record_id", "conflict_record_id" from "record_pushes" where "patient_id" = ? and "client_id" = ?`,
      [patientId, clientId],
      "get",
    );
    return row === undefined
      ? undefined
      : { outcome: row.outcome, recordId: row.record_id, conflictRecordId: row.conflict_record_id };
  }

  /** Remembers an uploaded change; a unique violation when the same change won a race. */
  async remember(em: EntityManager, patientId: string, clientId: string, entry: PushLedgerEntry, now: Date) {
    await em.execute(
      `insert into "record_pushes" ("patient_id", "client_id", "outcome", "record_id", "conflict_record_id", "pushed_at") ` +
        `values (?, ?, ?, ?, ?, ?)`,
      [patientId, clientId, entry.outcome, entry.recordId, entry.conflictRecordId, now.toISOString()],
      "run",
    );
  }
}
