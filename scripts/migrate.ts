/**
 * `npm run migrate`: applies the committed migrations (src/db/migrations) to the
 * configured database and exits. With DATABASE_URL unset it migrates the embedded
 * PostgreSQL in DATA_DIR, starting and stopping it around the run. The service also
 * migrates at start-up; this is for deployments that migrate as a separate step.
 *
 * Exit codes: 0 done, 1 failed, 2 bad configuration.
 */
import { ConfigError, loadConfig } from "../src/config/config.ts";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.ts";
import { migrateUp } from "../src/db/migrate.ts";
import { createOrm } from "../src/db/orm.ts";
import { createLogger } from "../src/observability/logger.ts";

async function main(): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  const embedded =
    config.databaseUrl === undefined ? await startEmbeddedPostgres({ dataDir: config.dataDir, logger }) : undefined;
  try {
    const orm = await createOrm({ url: config.databaseUrl ?? embedded?.url ?? "", poolMax: 2 }, logger);
    try {
      const applied = await migrateUp(orm);
      logger.info({ applied }, applied.length === 0 ? "database already up to date" : "migrations applied");
    } finally {
      await orm.close();
    }
  } finally {
    await embedded?.stop();
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`migration failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
