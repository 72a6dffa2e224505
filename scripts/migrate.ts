/**
 * `npm run migrate`: applies the committed migrations (src/db/migrations) to the
 * configured database and exits. With DATABASE_URL unset it migrates the embedded
 * PostgreSQL in DATA_DIR, starting and stopping it around the run. The service also
 * migrates at start-up; this is for deployments that migrate as a separate step. It
 * needs the service's data encryption keys (DATA_ENCRYPTION_KEYS_FILE, BLIND_INDEX_KEY_FILE):
 * the migration of issue #6 seals plaintext contact fields with them.
 *
 * Exit codes: 0 done, 1 failed, 2 bad configuration.
 */
import { migrateUp } from "../src/db/migrate.ts";
import { createLogger } from "../src/observability/logger.ts";
import { loadFieldCrypto } from "../src/shared/crypto/field-crypto.ts";
import { scriptConfig, withDatabase } from "./script-database.ts";
import { migrationSteps } from "../src/app/migration-steps.ts";

async function main(): Promise<number> {
  const config = scriptConfig();
  if (config === undefined) return 2;
  const logger = createLogger(config.logLevel);
  const crypto = await loadFieldCrypto(config.records);
  await withDatabase(config, logger, async (orm) => {
    const applied = await migrateUp(orm, migrationSteps(crypto, config, logger));
    logger.info({ applied }, applied.length === 0 ? "database already up to date" : "migrations applied");
  });
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
