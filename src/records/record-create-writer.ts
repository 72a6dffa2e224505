import type { EntityManager } from "@mikro-orm/postgresql";
import { AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { type AuditSink, CallAudit, recordCallsWith } from "../audit/call-audit.ts";
import { GroupCommit, type GroupCommitOptions, type GroupOutcome } from "../shared/group-commit.ts";
import type { WriteAudit } from "./record-writes.ts";
import type { NewRecordRow, RecordRepository, RecordRow } from "./record-repository.ts";

/** A record to store, with the audit trail of its call. */
export interface NewRecord {
  readonly row: NewRecordRow;
  readonly audit: WriteAudit | undefined;
  /** Whether the caller checked access and the request id first (`insertUnchecked`: not yet). */
  readonly checked: boolean;
}

/** What became of one: stored now, or the row an earlier create with its request id made. */
export type CreateOutcome = { readonly stored: RecordRow } | { readonly replay: RecordRow };

/** What became of an unchecked one (`insertUnchecked`): stored now, or nothing: the caller must check first. */
export type UncheckedOutcome = { readonly stored: RecordRow } | { readonly unchecked: true };

/**
 * Commits new records with their change-feed entries and audit entries,
 * group-committed: the creates that arrive in one event-loop turn share one
 * transaction, one INSERT, one feed statement and one append to the audit chain. The
 * chain has one head row that every append locks until its commit, so with a
 * transaction per record, creates took turns there (about one per fsync); a group takes
 * its turn once. Each create keeps its own outcome, atomically with its audit entry.
 *
 * A group whose entries are all calls' goes first as ONE statement through the audit
 * log (`recordWith`: the rows, their feed entries and audit entries; one round trip
 * instead of a transaction of six). A request id used before fails that statement as a
 * whole, and so do a deleted patient and a head moved by other processes: the checked
 * records of the group are then written by the transaction, which finds what each
 * request id made, and the unchecked ones go back to their callers.
 */
export class RecordCreateWriter {
  readonly #em: () => EntityManager;
  readonly #repository: RecordRepository;
  readonly #sink: AuditSink | undefined;
  readonly #group: GroupCommit<NewRecord, CreateOutcome | UncheckedOutcome>;

  /** `sink` is where the entries of CallAudits go (the audit log); other audits append their own. */
  constructor(
    em: () => EntityManager,
    repository: RecordRepository,
    sink: AuditSink | undefined,
    options: GroupCommitOptions = {},
  ) {
    this.#em = em;
    this.#repository = repository;
    this.#sink = sink;
    this.#group = new GroupCommit((records) => this.#commit(records), options);
  }

  /** Stores a record once its group commits, or finds the one its request id already made. */
  insert(row: NewRecordRow, audit: WriteAudit | undefined): Promise<CreateOutcome> {
    // Checked records are stored or replayed (#commit): never sent back unchecked.
    return this.#group.add({ row, audit, checked: true }) as Promise<CreateOutcome>;
  }

  /**
   * Stores a record whose patient and request id nobody checked yet, when its group's
   * one statement commits: that statement stores records of live patients only, and no
   * request id twice. Otherwise nothing is stored and the answer is `unchecked`: the
   * caller checks (and may then `insert`). A writer whose access depends on the
   * patient's liveness alone saves the checks' round trip this way.
   */
  insertUnchecked(row: NewRecordRow, audit: CallAudit): Promise<UncheckedOutcome> {
    return this.#group.add({ row, audit, checked: false }) as Promise<UncheckedOutcome>;
  }

  async #commit(records: readonly NewRecord[]): Promise<GroupOutcome<CreateOutcome | UncheckedOutcome>[]> {
    if (await this.#inOneStatement(records)) {
      return records.map((record) => ({ value: { stored: this.#repository.storedRowOf(record.row) } }));
    }
    const checked = records.filter((record) => record.checked);
    const written = checked.length > 0 ? await this.#inTransaction(checked) : [];
    const outcomes = new Map(
      checked.map((record, i) => [record, written[i] ?? { error: new Error("a group answered too few outcomes") }]),
    );
    return records.map((record) => outcomes.get(record) ?? { value: { unchecked: true } });
  }

  /** Writes the group in one statement when it can; false when the transaction must. */
  #inOneStatement(records: readonly NewRecord[]): Promise<boolean> {
    return recordCallsWith(
      this.#sink,
      records.map(({ row, audit }) => ({ audit, overrides: { resource: resourceOf(row) } })),
      () => this.#repository.insertChange(records.map((record) => record.row)),
    );
  }

  #inTransaction(records: readonly NewRecord[]): Promise<GroupOutcome<CreateOutcome>[]> {
    return this.#em().transactional(async (em) => {
      const stored = new Map(
        (
          await this.#repository.insertMany(
            em,
            records.map((record) => record.row),
          )
        ).map(byId),
      );
      const retries = records.filter((record) => !stored.has(record.row.id)).map((record) => record.row);
      const found = await this.#repository.findByRequests(
        em,
        retries.map((row) => ({ patientId: row.patientId, requestId: row.createRequestId })),
      );
      // uuids come back in canonical (lower-case) text.
      const replays = new Map(found.map((row) => [`${row.patient_id}|${row.create_request_id}`, row]));
      await this.#audit(
        em,
        records.filter((record) => stored.has(record.row.id)),
      );
      return records.map((record): GroupOutcome<CreateOutcome> => {
        const row = stored.get(record.row.id);
        if (row !== undefined) return { value: { stored: row } };
        const key = `${record.row.patientId.toLowerCase()}|${record.row.createRequestId.toLowerCase()}`;
        const replay = replays.get(key);
        return replay === undefined
          ? { error: new Error("a record was neither inserted nor found by its request id") }
          : { value: { replay } };
      });
    });
  }

  async #audit(em: EntityManager, records: readonly NewRecord[]): Promise<void> {
    const drafted = records.filter(
      (record): record is NewRecord & { audit: CallAudit } =>
        this.#sink !== undefined && record.audit instanceof CallAudit,
    );
    if (this.#sink !== undefined && drafted.length > 0) {
      await this.#sink.recordWithin(
        em,
        drafted.map(({ row, audit }) => audit.draft(AuditOutcome.SUCCESS, "", { resource: resourceOf(row) })),
      );
      for (const { audit } of drafted) audit.recorded = true;
    }
    const done = new Set<WriteAudit>(drafted.map((record) => record.audit));
    for (const { row, audit } of records) {
      if (audit !== undefined && !done.has(audit)) await audit.within(em, { resource: resourceOf(row) });
    }
  }
}

function resourceOf(row: NewRecordRow): string {
  return `patients/${row.patientId}/records/${row.id}`;
}

function byId(row: RecordRow): [string, RecordRow] {
  return [row.id, row];
}
