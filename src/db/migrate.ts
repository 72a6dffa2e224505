import pg from "pg";
import type { Orm } from "./orm.ts";

/**
 * An arbitrary but fixed advisory-lock key shared by every instance of this service
 * (the bytes of "patmigr" as a number); any other 64-bit constant would do.
 */
const migrationLockKey = "31078210386028914";

/**
 * Applies every committed migration not yet applied, all in one transaction, and
 * returns their names. Run at start-up and by `npm run migrate`.
 *
 * Several replicas may start at once: a PostgreSQL advisory lock, held on a
 * connection of its own (not one of the pool's, which may have a single slot), makes
 * them take turns, and the later ones find nothing left to apply.
 */
export async function migrateUp(orm: Orm): Promise<string[]> {
  const lock = new pg.Client({ connectionString: orm.config.get("clientUrl") });
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [migrationLockKey]);
    const applied = await orm.migrator.up();
    return applied.map((migration) => migration.name);
  } finally {
    // Closing the session releases the lock even if the unlock query fails.
    await lock.query("select pg_advisory_unlock($1)", [migrationLockKey]).catch(() => undefined);
    await lock.end();
  }
}
