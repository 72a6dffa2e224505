import type { EntityManager } from "@mikro-orm/postgresql";
import type { Orm } from "./orm.ts";

/** Rows a data step (migrate.ts `DataStep`) rewrites per transaction. */
export const dataStepBatchSize = 500;

/**
 * Runs `batch` in a transaction of its own, again and again until it reports no row
 * done; returns how many it did in all. A data step's batch selects rows still to
 * rewrite (`for update`, at most `dataStepBatchSize`) and rewrites them, so a killed
 * run keeps what it committed and the next start continues.
 */
export async function inBatches(orm: Orm, batch: (em: EntityManager) => Promise<number>): Promise<number> {
  let done = 0;
  for (;;) {
    const count = await orm.em.fork().transactional(batch);
    if (count === 0) return done;
    done += count;
  }
}

/**
 * Sets columns of many rows of `table` in one statement: each row's values by its `id`
 * (a uuid), typed by `types` (column name to SQL type), sent as one JSON array.
 */
export async function updateRowsById(
  em: EntityManager,
  table: string,
  types: Readonly<Record<string, string>>,
  rows: readonly Readonly<Record<string, unknown>>[],
): Promise<void> {
  const columns = Object.keys(types);
  await em.execute(
    `update "${table}" t set ${columns.map((column) => `"${column}" = r."${column}"`).join(", ")} ` +
      `from jsonb_to_recordset(cast(? as jsonb)) as r("id" uuid, ${columns.map((column) => `"${column}" ${types[column]}`).join(", ")}) ` +
      `where t."id" = r."id"`,
    [JSON.stringify(rows)],
    "run",
  );
}
