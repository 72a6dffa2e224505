import { randomBytes } from "node:crypto";
import pg from "pg";
import { migrateUp } from "../../src/db/migrate.ts";
import { createOrm } from "../../src/db/orm.ts";

/** A database of its own for one test file (or worker), migrated and empty. */
export interface TestDatabase {
  /** `patient_test_<random>`. */
  readonly name: string;
  /** Connection URL of the new database, for `createOrm` or DATABASE_URL. */
  readonly url: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

/**
 * The shared PostgreSQL of development machines and CI (trust auth on loopback,
 * ../shared/services.md), or the server of TEST_DATABASE_URL. Tests never use its
 * existing databases: each file creates its own and drops it afterwards, so runs do
 * not see each other's rows or what an earlier run left behind.
 */
function serverUrl(): URL {
  return new URL(process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres");
}

/**
 * Creates `patient_test_<random>` and applies the migrations, the way the service
 * does at start-up (unless `migrate: false`, for tests of migrating). Typical use:
 *
 *     let db: TestDatabase;
 *     beforeAll(async () => { db = await createTestDatabase(); });
 *     afterAll(() => db.drop());
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const admin = serverUrl();
  const name = `patient_test_${randomBytes(6).toString("hex")}`;
  await withAdminClient(admin, (client) => client.query(`create database ${client.escapeIdentifier(name)}`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const drop = async (): Promise<void> => {
    await withAdminClient(admin, (client) =>
      client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`),
    );
  };
  if (options.migrate === false) return { name, url: url.toString(), drop };
  try {
    const orm = await createOrm({ url: url.toString(), poolMax: 2 });
    try {
      await migrateUp(orm);
    } finally {
      await orm.close();
    }
  } catch (error) {
    await drop();
    throw error;
  }
  return { name, url: url.toString(), drop };
}

async function withAdminClient<T>(url: URL, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
