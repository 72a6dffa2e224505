import type { EntityManager } from "@mikro-orm/postgresql";
import type { Orm } from "../db/orm.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { type AtomicChange, AuditBatchWriter, appendStatement, chainedRows } from "./audit-batch-writer.ts";
import { type AuditEntryFields, canonicalTail } from "./audit-chain.ts";
import type { AuditEntryDraft } from "./audit-entry.ts";
import { auditFieldsOf } from "./audit-fields.ts";

/**
 * Batches written at once. Two (the second chained optimistically after the first)
 * measured slower here (4560 against 5200 GetPatient/s) and broke the ordering the
 * tests check, so one batch is in flight while the next gathers.
 */
const maxInFlight = 1;

/** Entries one group-commit transaction writes at most (one multi-row INSERT). */
export const defaultMaxBatchSize = 256;

/** Tuning of an AuditLog; the defaults suit the service. */
export interface AuditLogOptions {
  /** Entries per transaction at most; 256 by default. */
  readonly maxBatchSize?: number;
}

/** Counters since the log was created, for metrics and tests. */
export interface AuditLogStats {
  /** Group-commit transactions committed. */
  readonly batches: number;
  /** Entries those transactions wrote. */
  readonly entries: number;
  /** Group-commit transactions that failed (each rejected all of its callers). */
  readonly failedBatches: number;
  /** The most entries one transaction wrote. */
  readonly largestBatch: number;
}

/**
 * An audit entry could not be written. It carries the database error's class and
 * SQLSTATE but not the error itself as `cause`: MikroORM's message quotes the SQL
 * with the entries inlined, and loggers print causes. `databaseError` (not
 * enumerable, so serialisers skip it) keeps it for a debugger.
 */
export class AuditWriteError extends Error {
  /** The SQLSTATE, when the database answered (`23505`, `40P01`, …). */
  readonly code: string | undefined;
  declare readonly databaseError: unknown;

  constructor(error: unknown) {
    const type = error instanceof Error ? error.constructor.name : typeof error;
    const code = (error as { code?: unknown } | undefined)?.code;
    super(`audit entries could not be written (${type}${typeof code === "string" ? ` ${code}` : ""})`);
    this.name = "AuditWriteError";
    this.code = typeof code === "string" ? code : undefined;
    Object.defineProperty(this, "databaseError", { value: error, enumerable: false });
  }
}

interface Waiting {
  /** The entry's canonical encoding after its sequence (`canonicalTail`): all the batch writer needs. */
  readonly tail: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Entries to append in the statement of a data change (`recordWith`): written alone, in turn. */
interface WaitingChange {
  readonly tails: readonly string[];
  readonly change: AtomicChange;
  readonly resolve: (written: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The append-only, hash-chained audit log (RQ-PT004, audit-chain.ts).
 *
 * `record` group-commits: entries that arrive in the same turn of the event loop are
 * written by one statement (audit-batch-writer.ts: move the chain head if it is where
 * it was, and insert the batch), and each caller's promise settles only after that commit, so a
 * request never answers before its audit entry is durable. While one batch is being
 * written the next one gathers; at most one batch per process is in flight, and
 * processes take turns on the head row's lock. A failed batch rejects all its callers.
 *
 * `recordWithin` appends inside the caller's open transaction instead, for changes
 * that must be audited atomically with the change. It holds the head's lock until
 * that transaction ends, which pauses every other audit write: call it as the last
 * statement before commit.
 */
export class AuditLog {
  readonly #em: () => EntityManager;
  readonly #clock: Clock;
  readonly #maxBatchSize: number;
  #queue: (Waiting | WaitingChange)[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  /** Batches being written; up to `maxInFlight`, each on its own connection. */
  #writing = 0;
  #closed = false;
  #idle: (() => void)[] = [];
  #stats = { batches: 0, entries: 0, failedBatches: 0, largestBatch: 0 };
  /** Created on the first batch, so a log that never records opens no connection. */
  #writer: AuditBatchWriter | undefined;

  constructor(source: Orm | (() => EntityManager), clock: Clock = systemClock, options: AuditLogOptions = {}) {
    this.#em = typeof source === "function" ? source : () => source.em.fork();
    this.#clock = clock;
    this.#maxBatchSize = Math.max(1, Math.trunc(options.maxBatchSize ?? defaultMaxBatchSize));
  }

  /**
   * Appends one entry and resolves once it is committed. Rejects with an
   * AuditWriteError when its batch failed, a TypeError for a malformed draft (only
   * that caller), or an Error after `close`.
   */
  record(draft: AuditEntryDraft): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the audit log is closed"));
    let tail: string;
    try {
      tail = canonicalTail(auditFieldsOf(draft, this.#clock.now()));
    } catch (error) {
      return Promise.reject(error);
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#queue.push({ tail, resolve, reject });
    this.#schedule();
    return promise;
  }

  /**
   * Appends entries inside `em`'s open transaction (the caller commits or rolls
   * back; a rollback leaves neither entries nor a gap). Throws without one: outside a
   * transaction the head's lock would not hold until the entries are committed.
   */
  async recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void> {
    if (drafts.length === 0) return;
    if (!em.isInTransaction()) throw new Error("recordWithin needs an EntityManager inside a transaction");
    const now = this.#clock.now();
    await appendEntries(
      em,
      drafts.map((draft) => auditFieldsOf(draft, now)),
    );
  }

  /**
   * Runs a data change and appends entries in one statement (`AuditBatchWriter.writeWith`),
   * in turn with this log's batches, so the head this process knows stays right: one
   * round trip where a transaction with `recordWithin` takes four or more. Resolves
   * true once committed; false when other processes kept moving the head (nothing was
   * written: use a transaction with `recordWithin`); rejects with the database's error
   * when the change failed (nothing was written either).
   */
  recordWith(drafts: readonly AuditEntryDraft[], change: AtomicChange): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error("the audit log is closed"));
    let tails: string[];
    try {
      const now = this.#clock.now();
      tails = drafts.map((draft) => canonicalTail(auditFieldsOf(draft, now)));
    } catch (error) {
      return Promise.reject(error);
    }
    const { promise, resolve, reject } = Promise.withResolvers<boolean>();
    this.#queue.push({ tails, change, resolve, reject });
    // A change is a whole group already: with nothing written or gathered, it goes at once.
    if (this.#queue.length === 1 && this.#writing < maxInFlight && this.#scheduled === undefined) {
      void this.#writeBatch();
    } else {
      this.#schedule();
    }
    return promise;
  }

  /** Refuses new `record` calls and resolves when every pending entry is written (or has failed). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#busy()) await new Promise<void>((resolve) => this.#idle.push(resolve));
    await this.#writer?.close();
    this.#writer = undefined;
  }

  get stats(): AuditLogStats {
    return { ...this.#stats };
  }

  #busy(): boolean {
    return this.#writing > 0 || this.#scheduled !== undefined || this.#queue.length > 0;
  }

  #schedule(): void {
    if (this.#scheduled !== undefined || this.#writing >= maxInFlight) return;
    // setImmediate runs after the I/O callbacks of this turn: the entries of requests
    // that arrived together join one batch.
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      void this.#writeBatch();
    });
  }

  async #writeBatch(): Promise<void> {
    const first = this.#queue[0];
    if (first !== undefined) {
      this.#writing++;
      try {
        this.#writer ??= new AuditBatchWriter(this.#em().config.get("clientUrl") as string, maxInFlight);
        if ("change" in first) await this.#writeChange(this.#writer, this.#queue.shift() as WaitingChange);
        else await this.#writeEntries(this.#writer, this.#takeEntries());
      } finally {
        this.#writing--;
      }
    }
    if (this.#queue.length > 0) {
      this.#schedule();
    } else if (!this.#busy()) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  /** The entries at the queue's front, up to the batch size and the next change. */
  #takeEntries(): Waiting[] {
    let count = 0;
    while (count < this.#maxBatchSize && count < this.#queue.length && !("change" in (this.#queue[count] as object))) {
      count++;
    }
    return this.#queue.splice(0, count) as Waiting[];
  }

  async #writeEntries(writer: AuditBatchWriter, batch: readonly Waiting[]): Promise<void> {
    try {
      await writer.write(batch.map((waiting) => waiting.tail));
      this.#counted(batch.length);
      for (const waiting of batch) waiting.resolve();
    } catch (error) {
      this.#stats.failedBatches++;
      const failure = new AuditWriteError(error);
      for (const waiting of batch) waiting.reject(failure);
    }
  }

  async #writeChange(writer: AuditBatchWriter, waiting: WaitingChange): Promise<void> {
    try {
      const written = await writer.writeWith(waiting.tails, waiting.change);
      if (written) this.#counted(waiting.tails.length);
      waiting.resolve(written);
    } catch (error) {
      // The change's own failure (a constraint, say) is the caller's to interpret.
      waiting.reject(error);
    }
  }

  #counted(entries: number): void {
    this.#stats.batches++;
    this.#stats.entries += entries;
    this.#stats.largestBatch = Math.max(this.#stats.largestBatch, entries);
  }
}

type HeadRow = { readonly sequence: string; readonly hash: string };

/** `appendStatement` with MikroORM's placeholders; the rows travel as bytes (MikroORM writes a Buffer as hex). */
const appendWithinSql = appendStatement({
  rows: "convert_from(?, 'UTF8')::jsonb",
  sequence: "?",
  hash: "?",
  from: "?",
});

/**
 * Appends entries after the chain head, in `em`'s transaction: two statements. The
 * head row's lock (`for update`) orders appends across connections and processes; the
 * INSERT and the head's move are one statement, the group-committed writer's
 * (audit-batch-writer.ts): the rows as one JSON value, not fifteen literals per entry
 * that MikroORM would escape character by character.
 */
export async function appendEntries(em: EntityManager, entries: readonly AuditEntryFields[]): Promise<void> {
  if (entries.length === 0) return;
  const head: HeadRow | undefined = await em.execute<HeadRow>(
    `select "sequence"::text as "sequence", encode("hash", 'hex') as "hash" from "audit_chain_head" where "id" = 1 for update`,
    [],
    "get",
  );
  if (head === undefined) throw new Error("audit_chain_head has no row: are the migrations applied?");
  const { rows, last } = chainedRows({ sequence: BigInt(head.sequence), hash: head.hash }, entries.map(canonicalTail));
  const result = await em.execute<{ affectedRows: number }>(
    appendWithinSql,
    // `?` are positional: in the order they appear in the statement.
    [last.sequence.toString(), last.hash, head.sequence, Buffer.from(rows, "utf8")],
    "run",
  );
  // Cannot happen while the lock is held; a cheap guard against a head moved by hand.
  if (result.affectedRows !== entries.length) throw new Error("audit_chain_head moved while locked");
}
