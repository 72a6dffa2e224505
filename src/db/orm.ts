import { fileURLToPath } from "node:url";
import { Migrator } from "@mikro-orm/migrations";
import { MikroORM } from "@mikro-orm/postgresql";
import type { Logger } from "../observability/logger.ts";
import { entities } from "./entities.ts";
import { PinoOrmLogger } from "./orm-logger.ts";

/** The ORM with this service's entities and the PostgreSQL driver. */
export type Orm = MikroORM;

/** How to reach the database. */
export interface OrmSettings {
  /** `postgres://user:password@host:port/database`; from DATABASE_URL or the embedded server. */
  readonly url: string;
  /** DB_POOL_MAX. */
  readonly poolMax: number;
  /**
   * DB_CONNECT_TIMEOUT_MS: how long opening a connection may take before the call
   * fails (UNAVAILABLE) instead of hanging on an unreachable server; default 3000.
   */
  readonly connectTimeoutMs?: number;
}

/** A connect attempt to a server that does not answer fails after this long by default. */
export const defaultConnectTimeoutMs = 3_000;

/**
 * Absolute, so migrations are found whatever the working directory. The `.ts` files
 * are imported as they are: Node 24 strips their types.
 */
export const migrationsFolder = fileURLToPath(new URL("./migrations/", import.meta.url));

/**
 * Creates the ORM. It connects lazily (on the first query) and does not touch the
 * schema: call `migrateUp` (migrate.ts) at start-up. Close it with `orm.close()`.
 *
 * Every request must work on its own `orm.em.fork()`: the global EntityManager's
 * identity map would otherwise share entities (and health data) across requests,
 * which is why `allowGlobalContext` stays off.
 */
export async function createOrm(settings: OrmSettings, logger?: Logger): Promise<Orm> {
  return MikroORM.init({
    clientUrl: settings.url,
    entities: [...entities],
    extensions: [Migrator],
    pool: { min: 0, max: settings.poolMax, idleTimeoutMillis: 30_000 },
    // Fail fast when PostgreSQL is unreachable (an answer of UNAVAILABLE, and
    // CreateEmergency's journal takes over), and notice a dead peer on an idle socket.
    driverOptions: {
      // MikroORM takes only host, port, user, password and database from `clientUrl`;
      // node-postgres parses the whole URL again from this, so `sslmode=verify-full`,
      // `sslrootcert`, `sslcert` and `sslkey` (TLS to PostgreSQL in production) apply.
      connectionString: settings.url,
      connectionTimeoutMillis: settings.connectTimeoutMs ?? defaultConnectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    },
    // The database is created by whoever provisions it (embedded-postgres.ts, the
    // test helper, or the operator), never implicitly by a service with DDL rights.
    ensureDatabase: false,
    // Never query logging: see PinoOrmLogger. Without a logger, MikroORM stays quiet.
    debug: false,
    colors: false,
    ...(logger === undefined
      ? { logger: () => undefined }
      : { loggerFactory: () => new PinoOrmLogger(logger.child({ component: "orm" })) }),
    migrations: {
      path: migrationsFolder,
      pathTs: migrationsFolder,
      glob: "!(*.d).{js,ts}",
      // The snapshot would be rewritten under src/ on every `migrateUp`, which fails
      // on a read-only image and dirties the tree; new migrations diff against a
      // migrated database instead.
      snapshot: false,
      transactional: true,
      allOrNothing: true,
      emit: "ts",
    },
  });
}
