import { readdir } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrateUp } from "../../src/db/migrate.ts";
import { createOrm, migrationsFolder, type Orm } from "../../src/db/orm.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
const orms: Orm[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
});

afterAll(async () => {
  for (const orm of orms) await orm.close();
  await db?.drop();
});

/** Every committed migration, in the order they apply (their names start with a timestamp). */
async function committedMigrations(): Promise<string[]> {
  const files = await readdir(migrationsFolder);
  return files
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .map((file) => file.replace(/\.ts$/, ""))
    .sort();
}

it("lets replicas that start together migrate an empty database once", async () => {
  const committed = await committedMigrations();
  // The ones this test was written against; later issues only append.
  expect(committed.slice(0, 4)).toEqual([
    "Migration20261128100000_create_patients",
    "Migration20261128120000_create_accounts",
    "Migration20261128130000_create_audit_log",
    "Migration20261128140000_create_family_links",
  ]);
  // Pool size 1 on purpose: the advisory lock must not need a pooled connection.
  for (let i = 0; i < 3; i++) orms.push(await createOrm({ url: db.url, poolMax: 1 }));
  const results = await Promise.all(orms.map((orm) => migrateUp(orm)));
  // One replica applied them all, in order; the others found nothing left to do.
  expect(results.filter((applied) => applied.length > 0)).toEqual([committed]);
  const orm = orms[0] as Orm;
  const rows = await orm.em.fork().execute('select "name" from "mikro_orm_migrations" order by "id"');
  expect(rows).toEqual(committed.map((name) => ({ name })));
});
