import { clone, create } from "@bufbuild/protobuf";
import { anyPack, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import { UniqueConstraintViolationException } from "@mikro-orm/postgresql";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { type Record as RecordProto, RecordSchema } from "../../gen/telemed/patient/v1/record_pb.js";
import {
  type PullRecordChangesResponse,
  PullRecordChangesResponseSchema,
  type PushRecordChangesResponse,
  PushRecordChangesResponseSchema,
} from "../../gen/telemed/patient/v1/record_service_pb.js";
import {
  type ClientRecordChange,
  ClientRecordChange_Operation as Operation,
  type ClientRecordChangeResult,
  ClientRecordChangeResult_Outcome as Outcome,
  ClientRecordChangeResultSchema,
  type RecordChange,
  RecordChange_Type as ChangeType,
  RecordChangeSchema,
} from "../../gen/telemed/patient/v1/record_sync_pb.js";
import type { CallAudit } from "../audit/call-audit.ts";
import type { Logger } from "../observability/logger.ts";
import { errorDomain, toClientError } from "../rpc/error-mapping.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { kindOfDetails, type RecordSealer, recordNameOf, recordToProto, tombstoneOf } from "./record-content.ts";
import { badCursor, decodeCursor, encodeCursor, type FeedEntry, type RecordFeed } from "./record-feed.ts";
import type { SummarySource } from "./record-reads.ts";
import type { RecordRepository } from "./record-repository.ts";
import { recordIdsOf, requireMayAmend, type Writer } from "./record-rules.ts";
import type { RecordWrites, WriteAudit } from "./record-writes.ts";

/** What sync needs. */
export interface RecordSyncDeps {
  readonly em: () => EntityManager;
  readonly repository: RecordRepository;
  readonly feed: RecordFeed;
  readonly sealer: RecordSealer;
  readonly writes: RecordWrites;
  readonly summaries: SummarySource;
  readonly clock: Clock;
  readonly logger: Logger;
}

const defaultPageSize = 100;

/**
 * The change feed (PullRecordChanges) and offline uploads (PushRecordChanges) of
 * TST-PT007-2. The pipeline admitted the caller for this patient and audits pulls;
 * uploads go through RecordWrites (the same rules as CreateRecord, UpdateRecord and
 * DeleteRecord), one transaction per change, each with its audit entry and its line
 * in the upload ledger, so a change uploaded twice is applied once.
 */
export class RecordSync {
  readonly #d: RecordSyncDeps;

  constructor(deps: RecordSyncDeps) {
    this.#d = deps;
  }

  /** The changes after `cursor` in commit order, each record once at its latest change. */
  async pull(patientId: string, cursor: string, pageSize: number): Promise<PullRecordChangesResponse> {
    if (!isUuid(patientId)) throw notFound("Patient");
    const after = decodeCursor(patientId, cursor);
    const em = this.#d.em();
    if (!(await this.#d.repository.patientExists(em, patientId))) throw notFound("Patient");
    await this.#d.feed.catchUpSummaries(em, patientId);
    if (after > (await this.#d.feed.head(em, patientId))) throw badCursor();
    const size = pageSize === 0 ? defaultPageSize : pageSize;
    const entries = await this.#d.feed.page(em, patientId, after, size + 1);
    const page = entries.slice(0, size);
    const changes = await this.#materialise(em, patientId, page);
    return create(PullRecordChangesResponseSchema, {
      changes,
      nextCursor: encodeCursor(patientId, page.at(-1)?.seq ?? after),
      hasMore: entries.length > size,
    });
  }

  /** Applies uploaded changes in order; each gets its own result, none is lost silently. */
  async push(
    patientId: string,
    changes: readonly ClientRecordChange[],
    writer: Writer,
    audit: CallAudit | undefined,
  ): Promise<PushRecordChangesResponse> {
    const results: ClientRecordChangeResult[] = [];
    for (const change of changes) results.push(await this.#pushOne(patientId, change, writer, audit));
    // Nothing applied (all repeats or refusals): the call itself is still on record.
    if (audit !== undefined && !audit.recorded) await audit.record(AuditOutcome.SUCCESS, "");
    const head = await this.#d.feed.head(this.#d.em(), patientId);
    return create(PushRecordChangesResponseSchema, { results, nextCursor: encodeCursor(patientId, head) });
  }

  async #pushOne(
    patientId: string,
    change: ClientRecordChange,
    writer: Writer,
    audit: CallAudit | undefined,
  ): Promise<ClientRecordChangeResult> {
    const result = (outcome: Outcome, fields: Partial<ClientRecordChangeResult> = {}) =>
      create(ClientRecordChangeResultSchema, { clientId: change.clientId, outcome, ...fields });
    try {
      const earlier = await this.#alreadyApplied(patientId, change.clientId);
      if (earlier !== undefined) return result(Outcome.ALREADY_APPLIED, earlier);
      return await this.#apply(patientId, change, writer, audit, result);
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) {
        // The same change, uploaded twice at once: the other upload applied it.
        const earlier = await this.#alreadyApplied(patientId, change.clientId);
        if (earlier !== undefined) return result(Outcome.ALREADY_APPLIED, earlier);
      }
      if (!(error instanceof DomainError)) throw error;
      if (error.kind === "permission-denied") {
        // Names only, and only well-formed ones: the audit log never carries free text.
        const name = change.record?.name ?? "";
        await audit?.record(
          AuditOutcome.DENIED,
          error.reason,
          recordIdsOf(name) === undefined ? {} : { resource: name },
        );
      }
      const status = toClientError(error, this.#d.logger);
      return result(Outcome.REJECTED, {
        error: create(StatusSchema, {
          code: status.code,
          message: status.rawMessage,
          details: [anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: error.reason, domain: errorDomain }))],
        }),
      });
    }
  }

  async #apply(
    patientId: string,
    change: ClientRecordChange,
    writer: Writer,
    audit: CallAudit | undefined,
    result: (outcome: Outcome, fields?: Partial<ClientRecordChangeResult>) => ClientRecordChangeResult,
  ): Promise<ClientRecordChangeResult> {
    const input = clone(RecordSchema, change.record ?? create(RecordSchema));
    const ledger = (outcome: "applied" | "conflict", recordId?: string) => ({
      inTransaction: async (tx: EntityManager, id: string) => {
        const entry = { outcome, recordId: recordId ?? id, conflictRecordId: recordId === undefined ? null : id };
        await this.#d.feed.remember(tx, patientId, change.clientId, entry, this.#d.clock.now());
      },
    });
    if (change.operation === Operation.CREATE) {
      input.name = "";
      input.etag = "";
      input.clientId ||= change.clientId;
      const created = await this.#d.writes.create(
        patientId,
        input,
        change.clientId,
        writer,
        this.#auditOf(audit, AuditAction.CREATE, ""),
        ledger("applied"),
      );
      return result(Outcome.APPLIED, { record: created });
    }

    const recordId = this.#ownRecordId(patientId, input.name);
    const name = recordNameOf(patientId, recordId);
    try {
      if (change.operation === Operation.DELETE) {
        await this.#d.writes.delete(
          patientId,
          recordId,
          change.baseEtag,
          "",
          writer,
          this.#auditOf(audit, AuditAction.DELETE, name),
          ledger("applied"),
        );
        return result(Outcome.APPLIED, { record: await this.#current(patientId, recordId) });
      }
      input.etag = change.baseEtag;
      const kind = kindOfDetails(input);
      const paths = ["related_records", "consultation", ...(kind === undefined ? [] : [kind])];
      if (input.effectiveTime !== undefined) paths.push("effective_time");
      const updated = await this.#d.writes.update(
        patientId,
        recordId,
        input,
        paths,
        writer,
        this.#auditOf(audit, AuditAction.UPDATE, name),
        ledger("applied"),
      );
      return result(Outcome.APPLIED, { record: updated });
    } catch (error) {
      const stale = error instanceof DomainError && error.reason === "ETAG_MISMATCH";
      const gone = error instanceof DomainError && error.reason === "RECORD_NOT_FOUND";
      const row = stale || gone ? await this.#d.repository.getAny(this.#d.em(), patientId, recordId) : undefined;
      if (row === undefined) throw error;
      // A deleted record the caller could never have changed stays refused as such.
      requireMayAmend(writer, { source: row.source, author: row.author });
      const server = await this.#current(patientId, recordId);
      if (server === undefined) throw error;
      if (change.operation === Operation.DELETE) {
        // Deleted already: what the client wanted holds. Changed since: the server's
        // version stays, and the conflict tells the patient their deletion did not happen.
        if (gone) {
          await this.#remember(patientId, change.clientId, "applied", recordId);
          return result(Outcome.APPLIED, { record: server });
        }
        await this.#remember(patientId, change.clientId, "conflict", recordId);
        return result(Outcome.CONFLICT, { record: server });
      }
      // An edit of a record changed or deleted since: the client's version becomes a
      // record of its own beside the server's, named by `conflict_of`.
      input.name = "";
      input.etag = "";
      input.clientId ||= change.clientId;
      const copy = await this.#d.writes.create(
        patientId,
        input,
        change.clientId,
        writer,
        this.#auditOf(audit, AuditAction.CREATE, ""),
        { conflictOf: name, ...ledger("conflict", recordId) },
      );
      return result(Outcome.CONFLICT, { record: server, conflictCopy: copy });
    }
  }

  /** The record id of a name of this patient's; NOT_FOUND (rejected) for another patient's. */
  #ownRecordId(patientId: string, name: string): string {
    const ids = recordIdsOf(name);
    if (ids === undefined || ids.patientId !== patientId || !isUuid(ids.recordId)) throw notFound("Record");
    return ids.recordId;
  }

  /** The result of an earlier upload of this change, as the records are now. */
  async #alreadyApplied(patientId: string, clientId: string): Promise<Partial<ClientRecordChangeResult> | undefined> {
    const entry = await this.#d.feed.pushed(this.#d.em(), patientId, clientId);
    if (entry === undefined) return undefined;
    return {
      record: await this.#current(patientId, entry.recordId),
      conflictCopy:
        entry.conflictRecordId === null ? undefined : await this.#current(patientId, entry.conflictRecordId),
    };
  }

  async #remember(patientId: string, clientId: string, outcome: "applied" | "conflict", recordId: string) {
    await this.#d.feed.remember(
      this.#d.em(),
      patientId,
      clientId,
      { outcome, recordId, conflictRecordId: null },
      this.#d.clock.now(),
    );
  }

  /** A record of this table as it is now: live, or its tombstone. */
  async #current(patientId: string, recordId: string): Promise<RecordProto | undefined> {
    const row = await this.#d.repository.getAny(this.#d.em(), patientId, recordId);
    if (row === undefined) return undefined;
    return row.deleted_at === null ? recordToProto(row, this.#d.sealer.open(row)) : tombstoneOf(row);
  }

  /** One audit entry per applied change, naming its record and what was done to it. */
  #auditOf(audit: CallAudit | undefined, action: AuditAction, resource: string): WriteAudit | undefined {
    if (audit === undefined) return undefined;
    const base = resource === "" ? { action } : { action, resource };
    return {
      within: (tx, overrides = {}) => audit.within(tx, { ...base, ...overrides }),
      record: (outcome, reason, overrides = {}) => audit.record(outcome, reason, { ...base, ...overrides }),
    };
  }

  async #materialise(em: EntityManager, patientId: string, page: readonly FeedEntry[]): Promise<RecordChange[]> {
    const recordIds = page.filter((entry) => entry.origin === "record").map((entry) => entry.recordId);
    const rows = new Map((await this.#d.repository.manyAny(em, patientId, recordIds)).map((row) => [row.id, row]));
    const changes: RecordChange[] = [];
    for (const entry of page) {
      let record: RecordProto | undefined;
      if (entry.origin === "record") {
        const row = rows.get(entry.recordId);
        if (row !== undefined) {
          record = row.deleted_at === null ? recordToProto(row, this.#d.sealer.open(row)) : tombstoneOf(row);
        }
      } else {
        const consultationId = await this.#d.repository.summaryConsultation(em, patientId, entry.recordId);
        record = consultationId === undefined ? undefined : await this.#d.summaries.recordOf(em, consultationId);
      }
      if (record === undefined) continue;
      const type =
        entry.type === "deleted" || record.deleteTime !== undefined
          ? ChangeType.DELETED
          : entry.createdSince
            ? ChangeType.CREATED
            : ChangeType.UPDATED;
      changes.push(create(RecordChangeSchema, { type, record, changeTime: timestampFromDate(entry.changedAt) }));
    }
    return changes;
  }
}
