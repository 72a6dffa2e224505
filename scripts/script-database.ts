import { type Config, ConfigError, loadConfig } from "../src/config/config.ts";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.ts";
import { createOrm, type Orm } from "../src/db/orm.ts";
import type { Logger } from "../src/observability/logger.ts";

/** The configuration, or undefined after printing why it is invalid (the script then exits 2). */
export function scriptConfig(): Config | undefined {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return undefined;
  }
}

/**
 * Runs `work` with an ORM on the configured database; with DATABASE_URL unset, on the
 * embedded PostgreSQL in DATA_DIR, started and stopped around it.
 */
export async function withDatabase<T>(config: Config, logger: Logger, work: (orm: Orm) => Promise<T>): Promise<T> {
  const embedded =
    config.databaseUrl === undefined ? await startEmbeddedPostgres({ dataDir: config.dataDir, logger }) : undefined;
  try {
    const orm = await createOrm({ url: config.databaseUrl ?? embedded?.url ?? "", poolMax: 2 }, logger);
    try {
      return await work(orm);
    } finally {
      await orm.close();
    }
  } finally {
    await embedded?.stop();
  }
}
