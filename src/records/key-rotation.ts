import { setTimeout as sleep } from "node:timers/promises";
import type { EntityManager } from "@mikro-orm/postgresql";
import { type EnvelopeCipher, EnvelopeError } from "../shared/crypto/envelope.ts";

/**
 * A table whose rows carry a data key wrapped by a key-encryption key of the ring
 * (`data_key_wrapped`, format `ek1.<kek id>.…`), bound to the table and the row id.
 */
export interface WrappedKeyTable {
  readonly table: string;
  /** A column that repeats the KEK id (kept in step when re-wrapping); without it the id is read from the wrapped key. */
  readonly keyIdColumn?: string;
}

/** Every table that stores data keys wrapped by the key ring: rotation re-wraps them all. */
export const wrappedKeyTables: readonly WrappedKeyTable[] = Object.freeze([
  { table: "medical_records", keyIdColumn: "data_key_id" },
  { table: "patient_devices" },
  // Profiles' contact fields and accounts' login emails (issue #6), each row with its own data key.
  { table: "patients", keyIdColumn: "data_key_id" },
  { table: "accounts", keyIdColumn: "data_key_id" },
  // Emergencies' description, location, callback phone and cancel reason (issue #6, safety 2).
  { table: "emergencies", keyIdColumn: "data_key_id" },
  // Consultation summaries and health insights (issue #6: moved from the secret key to envelope encryption).
  { table: "consultation_summaries", keyIdColumn: "data_key_id" },
  { table: "health_insights", keyIdColumn: "data_key_id" },
]);

/** One batch done, or a table's start (`batchRewrapped` 0). */
export interface RotationProgress {
  readonly table: string;
  /** Rows of this table re-wrapped by this run so far. */
  readonly rewrapped: number;
  /** Rows still on another key (estimate: counted at the start of the pass, less what this run did). */
  readonly remaining: number;
  /** Rows that could not be re-wrapped (unknown key, tampered), by id. */
  readonly failed: readonly string[];
  readonly batchRewrapped: number;
}

/** What a run did to one table. */
export interface TableRotation {
  readonly table: string;
  readonly rewrapped: number;
  /** Rows still wrapped by another key at the end (counted): failed ones, locked ones, or written meanwhile under an old key. */
  readonly remaining: number;
  readonly failed: readonly string[];
  /** Rows per KEK id at the end, the current key included. */
  readonly keysInUse: ReadonlyMap<string, number>;
}

export interface RotationOptions {
  /** Rows per batch; each batch is one transaction. */
  readonly batchSize: number;
  /** A pause between batches (throttle for a busy database), in ms. */
  readonly pauseMs?: number;
  /** Passes over a table while rows stay behind (locked by a writer meanwhile); default 3. */
  readonly maxPasses?: number;
  /** Pause before another pass, in ms; default 500. */
  readonly passPauseMs?: number;
  readonly onProgress?: (progress: RotationProgress) => void;
  /** Stops after the batch in progress. */
  readonly signal?: AbortSignal;
  readonly tables?: readonly WrappedKeyTable[];
}

const firstId = "00000000-0000-0000-0000-000000000000";

/**
 * Key rotation: re-wraps, under the ring's current KEK, the data key of every row still
 * wrapped by another one (`EnvelopeCipher.rewrap`: the data key and so the row's sealed
 * fields, fingerprints and version stay as they are; the associated data still names the
 * same table and row). Batches in id order, one transaction each, locking with
 * `for update skip locked`: a row a live request (or a second rotator) holds is skipped
 * and picked up by a later pass, and nobody waits on anybody. Resumable by construction:
 * it only ever selects rows not yet on the current key, so a killed run loses at most
 * its uncommitted batch, and running it again continues.
 */
export async function rotateDataKeys(
  em: () => EntityManager,
  cipher: EnvelopeCipher,
  options: RotationOptions,
): Promise<TableRotation[]> {
  const results: TableRotation[] = [];
  for (const table of options.tables ?? wrappedKeyTables) {
    if (options.signal?.aborted) break;
    results.push(await rotateTable(em, cipher, table, options));
  }
  return results;
}

/** Rows per KEK id in each table (what a key still protects: remove a key from the ring only at zero). */
export async function keysInUse(em: EntityManager, table: WrappedKeyTable): Promise<Map<string, number>> {
  const rows = await em.execute<{ key_id: string; n: string | number }[]>(
    `select ${keyIdOf(table)} as "key_id", count(*) as "n" from "${table.table}" group by 1 order by 1`,
    [],
    "all",
  );
  return new Map(rows.map((row) => [row.key_id, Number(row.n)]));
}

/** Rows of the table not wrapped by `keyId`. */
export async function countOffKey(em: EntityManager, table: WrappedKeyTable, keyId: string): Promise<number> {
  const row = await em.execute<{ n: string | number }>(
    `select count(*) as "n" from "${table.table}" where ${keyIdOf(table)} <> ?`,
    [keyId],
    "get",
  );
  return Number(row?.n ?? 0);
}

async function rotateTable(
  em: () => EntityManager,
  cipher: EnvelopeCipher,
  table: WrappedKeyTable,
  options: RotationOptions,
): Promise<TableRotation> {
  const current = cipher.currentKeyId;
  const failed = new Set<string>();
  const maxPasses = options.maxPasses ?? 3;
  let rewrapped = 0;
  let remaining = await countOffKey(em(), table, current);
  options.onProgress?.({ table: table.table, rewrapped, remaining, failed: [], batchRewrapped: 0 });
  for (let pass = 0; pass < maxPasses && remaining > failed.size && !options.signal?.aborted; pass++) {
    if (pass > 0) await sleep(options.passPauseMs ?? 500);
    let after = firstId;
    let estimate = remaining;
    for (;;) {
      if (options.signal?.aborted) break;
      const batch = await em().transactional(async (tx) => {
        const rows = await tx.execute<{ id: string; data_key_wrapped: string }[]>(
          `select "id", "data_key_wrapped" from "${table.table}" where ${keyIdOf(table)} <> ? and "id" > ? ` +
            `order by "id" limit ? for update skip locked`,
          [current, after, options.batchSize],
          "all",
        );
        let done = 0;
        for (const row of rows) {
          let next: { wrapped: string; keyId: string };
          try {
            next = cipher.rewrap(row.data_key_wrapped, { table: table.table, row: row.id });
          } catch (error) {
            if (!(error instanceof EnvelopeError)) throw error;
            failed.add(row.id);
            continue;
          }
          const keyColumn = table.keyIdColumn === undefined ? "" : `, "${table.keyIdColumn}" = ?`;
          const keyParam = table.keyIdColumn === undefined ? [] : [next.keyId];
          await tx.execute(
            `update "${table.table}" set "data_key_wrapped" = ?${keyColumn} where "id" = ?`,
            [next.wrapped, ...keyParam, row.id],
            "run",
          );
          done++;
        }
        return { last: rows.at(-1)?.id, selected: rows.length, done };
      });
      if (batch.last === undefined) break;
      after = batch.last;
      rewrapped += batch.done;
      estimate = Math.max(0, estimate - batch.done);
      options.onProgress?.({
        table: table.table,
        rewrapped,
        remaining: estimate,
        failed: [...failed],
        batchRewrapped: batch.done,
      });
      if (options.pauseMs) await sleep(options.pauseMs);
    }
    remaining = await countOffKey(em(), table, current);
  }
  return {
    table: table.table,
    rewrapped,
    remaining,
    failed: [...failed],
    keysInUse: await keysInUse(em(), table),
  };
}

/** The KEK id of a row, as SQL: its own column, or the second part of `ek1.<id>.<iv>.<body>`. */
function keyIdOf(table: WrappedKeyTable): string {
  return table.keyIdColumn === undefined ? `split_part("data_key_wrapped", '.', 2)` : `"${table.keyIdColumn}"`;
}
