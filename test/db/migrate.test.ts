import { afterAll, beforeAll, expect, it } from "vitest";
import { migrateUp } from "../../src/db/migrate.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
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

it("lets replicas that start together migrate an empty database once", async () => {
  // Pool size 1 on purpose: the advisory lock must not need a pooled connection.
  for (let i = 0; i < 3; i++) orms.push(await createOrm({ url: db.url, poolMax: 1 }));
  const results = await Promise.all(orms.map((orm) => migrateUp(orm)));
  const applied = results.flat();
  expect(applied).toEqual(["Migration20261128100000_create_patients"]);
  const orm = orms[0] as Orm;
  const rows = await orm.em.fork().execute('select "name" from "mikro_orm_migrations"');
  expect(rows).toEqual([{ name: "Migration20261128100000_create_patients" }]);
});
