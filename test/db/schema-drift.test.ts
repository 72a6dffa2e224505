import { afterAll, beforeAll, expect, it } from "vitest";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
let orm: Orm;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 2 });
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

// The entities (defineEntity) describe the schema; the committed migrations build it.
// When someone changes one without the other, MikroORM's diff of entities against the
// migrated database is no longer empty: write a migration (`orm.migrator.create()`).
it("the committed migrations build exactly the schema the entities describe", async () => {
  expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toBe("");
});

it("applying the migrations again changes nothing", async () => {
  expect(await orm.migrator.getPending()).toEqual([]);
  expect(await orm.migrator.up()).toEqual([]);
});
