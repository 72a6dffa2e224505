import { randomBytes } from "node:crypto";
import pg from "pg";

/** A database made for one bench run. */
export interface BenchDatabase {
  /** `patient_bench_<random>`. */
  readonly name: string;
  /** Its connection URL, for DATABASE_URL. */
  readonly url: string;
  /** Runs one query on it (a short-lived connection): for checks, not for load. */
  query<R extends pg.QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>>;
  /** Drops it, ending any connection still open to it. */
  drop(): Promise<void>;
}

/**
 * Creates an empty `patient_bench_<random>` on the shared PostgreSQL
 * (BENCH_DATABASE_SERVER, by default postgres://postgres@127.0.0.1:5432/postgres).
 * The service applies its migrations to it when it starts.
 */
export async function createBenchDatabase(
  server = process.env.BENCH_DATABASE_SERVER ?? "postgres://postgres@127.0.0.1:5432/postgres",
): Promise<BenchDatabase> {
  const name = `patient_bench_${randomBytes(6).toString("hex")}`;
  await withClient(server, (client) => client.query(`create database ${client.escapeIdentifier(name)}`));
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    query: (sql, params) => withClient(url.toString(), (client) => client.query(sql, params as unknown[])),
    drop: async () => {
      await withClient(server, (client) =>
        client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`),
      );
    },
  };
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
