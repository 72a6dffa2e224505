import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/config.ts";
import { type RunningApp, startApp } from "../../src/app/start-app.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { Clock } from "../../src/shared/clock.ts";
import { deleteEmergencyStream } from "./emergency-lane-cleanup.ts";
import { createTestDatabase, type TestDatabase } from "./test-database.ts";

/** A running service on a fresh database of the real PostgreSQL, on a free port. */
export interface TestApp {
  readonly app: RunningApp;
  readonly database: TestDatabase;
  /** `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  /** `127.0.0.1:PORT`, for grpc-js. */
  readonly address: string;
  /** The app's DATA_DIR (its generated keys live under keys/). */
  readonly dataDir: string;
  close(): Promise<void>;
}

/** How a test app differs from the default one. */
export interface TestAppOptions {
  /** Where its logs go (silent unless LOG_LEVEL is set in `env`). */
  readonly logs?: NodeJS.WritableStream;
  /** A database of the caller's: several apps on one database are replicas of one service. */
  readonly database?: TestDatabase;
  /** A DATA_DIR of the caller's: replicas that share it share their signing keys, so each accepts the other's tokens. */
  readonly dataDir?: string;
  /** Replicas share their Redis keys too: pass the same prefix. */
  readonly redisKeyPrefix?: string;
  /** The app's clock (reminders, cut-offs, join windows), for tests that move time. */
  readonly clock?: Clock;
}

/**
 * Starts the whole service the way `npm start` does (same wiring, same pipeline),
 * configured through environment variables, on its own database.
 */
export async function startTestApp(env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  // A database passed in belongs to the caller (replicas share one); a fresh one is this app's.
  const ownDatabase = options.database === undefined;
  const database = options.database ?? (await createTestDatabase());
  // Keys are generated into a folder of this app's own; Redis keys get a prefix of their own.
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "patient-test-app-")));
  // Parallel test files share one NATS: each app's emergency stream, subjects and consumers get a prefix of their own.
  const lanePrefix = `t${randomBytes(5).toString("hex")}`;
  const config = loadConfig({
    DATA_DIR: dataDir,
    REDIS_URL: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
    REDIS_KEY_PREFIX: options.redisKeyPrefix ?? `patient-test:${randomUUID()}:`,
    NATS_URL: process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222",
    DATABASE_URL: database.url,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    SHUTDOWN_GRACE_MS: "2000",
    EMERGENCY_LANE_PREFIX: lanePrefix,
    ...env,
  });
  const app = await startApp(config, createLogger(config.logLevel, options.logs as never), { clock: options.clock });
  return {
    app,
    database,
    baseUrl: `http://127.0.0.1:${app.port}`,
    address: `127.0.0.1:${app.port}`,
    dataDir,
    close: async () => {
      await app.stop();
      await deleteEmergencyStream(config.natsUrl, config.emergencies.lanePrefix);
      if (ownDatabase) await database.drop();
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The environment that gives another app `first`'s keys (token signing, secrets, audit
 * signing, data encryption, blind index), so the two are replicas of one service: each
 * accepts the other's tokens and reads what the other sealed.
 */
export function keysOf(first: TestApp): Record<string, string> {
  const keys = join(first.dataDir, "keys");
  return {
    AUTH_SIGNING_KEY_FILE: join(keys, "auth-signing-key.pem"),
    SECRET_KEY_FILE: join(keys, "secret.key"),
    AUDIT_SIGNING_KEY_FILE: join(keys, "audit-signing-key.pem"),
    DATA_ENCRYPTION_KEYS_FILE: join(keys, "data-encryption-keys"),
    BLIND_INDEX_KEY_FILE: join(keys, "blind-index.key"),
  };
}
