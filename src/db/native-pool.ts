import type pg from "pg";
import type { Orm } from "./orm.ts";

/**
 * The `pg` pool under the ORM (the same connections, and MikroORM's type parsers), for
 * the few hot reads that run as named statements: PostgreSQL parses and plans them once
 * per connection, and a call skips the EntityManager fork, the query builder and the
 * values inlined into SQL text (GetPatient's batched read: ~10% of its CPU went there).
 */
export function nativePoolOf(orm: Orm): () => Promise<pg.Pool> {
  let pool: Promise<pg.Pool> | undefined;
  return () => {
    pool ??= orm.em.getConnection().getNativeClient() as Promise<pg.Pool>;
    return pool;
  };
}
