import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import DataLoader from "dataloader";
import type pg from "pg";
import type { Record as RecordProto } from "../../gen/telemed/patient/v1/record_pb.js";
import type { ListRecordsRequest } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import { deepFreeze } from "../shared/deep-freeze.ts";
import { notFound } from "../shared/domain-errors.ts";
import { RowMemo } from "../shared/row-memo.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { kindFilter, type RecordSealer, recordToProto } from "./record-content.ts";
import type { RecordRepository, RecordRow, TimelineEntry } from "./record-repository.ts";
import { consultationIdsOf } from "./record-rules.ts";

/** The consultation summaries of the consultations context, as history records. */
export interface SummarySource {
  /** The summary record of a consultation, or undefined when it has none. */
  recordOf(em: EntityManager, consultationId: string): Promise<RecordProto | undefined>;
  /** The summary records of these consultations, by consultation id (those with none are left out); two queries. */
  recordsOf(em: EntityManager, consultationIds: readonly string[]): Promise<Map<string, RecordProto>>;
}

const defaultPageSize = 25;
/** Records kept opened: the bound of the opened data keys they come from (src/shared/crypto/field-crypto.ts). */
const recordsKept = 10_000;

/**
 * The history timeline (TST-PT004-1) and single records. The pipeline has decided who
 * may read this patient's records (and audits the read); every query here is scoped to
 * that patient, so another patient's record id answers NOT_FOUND like a missing one.
 */
export class RecordReads {
  readonly #em: () => EntityManager;
  readonly #repository: RecordRepository;
  readonly #sealer: RecordSealer;
  readonly #summaries: SummarySource;
  /** Records as last read, per row: a re-read of an unchanged row is not opened and decoded again. */
  readonly #opened = new RowMemo<RecordRow, RecordProto>(recordsKept);

  readonly #pool: (() => Promise<pg.Pool>) | undefined;

  /** `pool`: the ORM's pool, for the batched GetRecord read as a named statement (src/db/native-pool.ts). */
  constructor(
    em: () => EntityManager,
    repository: RecordRepository,
    sealer: RecordSealer,
    summaries: SummarySource,
    pool?: () => Promise<pg.Pool>,
  ) {
    this.#em = em;
    this.#pool = pool;
    this.#repository = repository;
    this.#sealer = sealer;
    this.#summaries = summaries;
  }

  /** One page of the patient's history, newest first, with the request's filters. */
  async list(patientId: string, request: ListRecordsRequest): Promise<{ records: RecordProto[]; next: string }> {
    if (!isUuid(patientId)) throw notFound("Patient");
    const scope = scopeOf(patientId, request);
    const cursor = decodePageToken(scope, request.pageToken);
    const pageSize = request.pageSize === 0 ? defaultPageSize : request.pageSize;
    let consultationId: string | undefined;
    if (request.consultation !== "") {
      const ids = consultationIdsOf(request.consultation);
      // Another patient's consultation, or an id that cannot exist: nothing matches.
      if (ids === undefined || ids.patientId !== patientId || !isUuid(ids.consultationId)) {
        return { records: [], next: "" };
      }
      consultationId = ids.consultationId;
    }
    const filter = kindFilter(request.kinds);
    const em = this.#em();
    const entries = await this.#repository.timeline(em, {
      patientId,
      kinds: filter.kinds,
      summaries: filter.summaries,
      startTime: request.startTime === undefined ? undefined : new Date(timestampMs(request.startTime)),
      endTime: request.endTime === undefined ? undefined : new Date(timestampMs(request.endTime)),
      consultationId,
      after: cursor === undefined ? undefined : { effectiveMs: Number(cursor.t), id: String(cursor.i) },
      limit: pageSize + 1,
    });
    const page = entries.slice(0, pageSize);
    const last = page.at(-1);
    const next =
      entries.length > pageSize && last !== undefined
        ? encodePageToken(scope, { t: last.effectiveTime.getTime(), i: last.id })
        : "";
    return { records: await this.#materialise(em, patientId, page), next };
  }

  /** One record (or consultation summary) of the patient; NOT_FOUND otherwise. */
  async get(patientId: string, recordId: string): Promise<RecordProto> {
    if (!isUuid(patientId) || !isUuid(recordId)) throw notFound("Record");
    const row = await this.#byId.load(recordId);
    // Another patient's record is answered like a missing one.
    if (row !== undefined && row.patient_id === patientId) return this.#recordOf(row);
    const em = this.#em();
    const consultationId = await this.#repository.summaryConsultation(em, patientId, recordId);
    const summary = consultationId === undefined ? undefined : await this.#summaries.recordOf(em, consultationId);
    if (summary === undefined) throw notFound("Record");
    return summary;
  }

  // Reads issued in the same turn of the event loop share one query (as patients' do):
  // a statement per GetRecord (its socket write and the server's parse) was most of
  // what a read cost. Each call still sees the row as committed when the query ran.
  readonly #byId = new DataLoader<string, RecordRow | undefined>(
    async (ids) => {
      const rows =
        this.#pool === undefined
          ? await this.#repository.liveByIds(this.#em(), ids)
          : await this.#repository.liveByIdsPrepared(await this.#pool(), ids);
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id));
    },
    { cache: false, maxBatchSize: 16, batchScheduleFn: (run) => setImmediate(run) },
  );

  /** The record of a row, opened (frozen: it may be shared); DATA_LOSS when it does not open. */
  #recordOf(row: RecordRow): RecordProto {
    return this.#opened.get(row, (same) => deepFreeze(recordToProto(same, this.#sealer.open(same))));
  }

  async #materialise(em: EntityManager, patientId: string, page: readonly TimelineEntry[]): Promise<RecordProto[]> {
    const rows = new Map<string, RecordRow>();
    const recordIds = page.filter((entry) => entry.origin === "record").map((entry) => entry.id);
    const consultationIds = page.flatMap((entry) =>
      entry.origin === "summary" && entry.consultationId !== null ? [entry.consultationId] : [],
    );
    const [stored, summaries] = await Promise.all([
      this.#repository.many(em, patientId, recordIds),
      this.#summaries.recordsOf(em, consultationIds),
    ]);
    for (const row of stored) rows.set(row.id, row);
    const records: RecordProto[] = [];
    for (const entry of page) {
      if (entry.origin === "record") {
        const row = rows.get(entry.id);
        // Deleted between the two queries: left out, as it would be a moment later.
        if (row !== undefined) records.push(this.#recordOf(row));
      } else if (entry.consultationId !== null) {
        const summary = summaries.get(entry.consultationId);
        if (summary !== undefined) records.push(summary);
      }
    }
    return records;
  }
}

/** What a page token is bound to: the patient and every filter (AIP-158: same filters on every page). */
function scopeOf(patientId: string, request: ListRecordsRequest): string {
  const start = request.startTime === undefined ? "" : String(timestampMs(request.startTime));
  const end = request.endTime === undefined ? "" : String(timestampMs(request.endTime));
  const kinds = [...request.kinds].sort((a, b) => a - b).join(",");
  return `records|${patientId}|${kinds}|${start}|${end}|${request.consultation}`;
}
