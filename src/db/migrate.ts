import pg from "pg";
import type { Orm } from "./orm.ts";

/**
 * An arbitrary but fixed advisory-lock key shared by every instance of this service
 * (the bytes of "patmigr" as a number); any other 64-bit constant would do.
 */
const migrationLockKey = "31078210386028914";

/**
 * Work in code that a migration needs done before it runs, because SQL cannot do it
 * (encrypting plaintext columns needs the keys): `run` is called, under the
 * migration lock, after the migrations before `before` and only while `before` is
 * still pending.
 */
export interface DataStep {
  /** The name of the migration that needs the step (e.g. `Migration20261129130100_drop_plaintext_contacts`). */
  readonly before: string;
  run(orm: Orm): Promise<void>;
}

/**
 * Applies every committed migration not yet applied, all in one transaction, and
 * returns their names. Run at start-up and by `npm run migrate`. With `steps`, the
 * migrations before a step's `before` are applied first (one transaction), then the
 * step runs, then the rest; a migration whose step did not run refuses by itself
 * when the data is not ready (the plaintext drop does).
 *
 * Several replicas may start at once: a PostgreSQL advisory lock, held on a
 * connection of its own (not one of the pool's, which may have a single slot), makes
 * them take turns, and the later ones find nothing left to apply.
 */
export async function migrateUp(orm: Orm, steps: readonly DataStep[] = []): Promise<string[]> {
  const lock = new pg.Client({ connectionString: orm.config.get("clientUrl") });
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [migrationLockKey]);
    const applied: string[] = [];
    for (const step of steps) {
      const pending = (await orm.migrator.getPending()).map((migration) => migration.name);
      const at = pending.indexOf(step.before);
      if (at === -1) continue;
      const previous = pending[at - 1];
      if (previous !== undefined) {
        applied.push(...(await orm.migrator.up({ to: previous })).map((migration) => migration.name));
      }
      await step.run(orm);
    }
    applied.push(...(await orm.migrator.up()).map((migration) => migration.name));
    return applied;
  } finally {
    // Closing the session releases the lock even if the unlock query fails.
    await lock.query("select pg_advisory_unlock($1)", [migrationLockKey]).catch(() => undefined);
    await lock.end();
  }
}
