import { randomBytes } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { draft, withClient } from "./audit-fixtures.ts";

// Alongside TST-PT004-2 (access denied) of the seed: nobody may rewrite who accessed what.
// Issue #3: "the database role of the service may only INSERT (UPDATE, DELETE and TRUNCATE
// refused by grants and a trigger)".

let db: TestDatabase;
let orm: Orm;
/** A throwaway login role in patient_service_app, as the service's runtime login would be. */
const appLogin = `audit_test_login_${randomBytes(4).toString("hex")}`;
let appUrl: string;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 2 });
  const log = new AuditLog(orm);
  await Promise.all([log.record(draft()), log.record(draft()), log.record(draft())]);
  await log.close();
  await orm.em
    .fork()
    .execute(
      `insert into "audit_checkpoints" ("sequence", "hash", "signed_at", "key_id", "signature") ` +
        `select "sequence", "hash", now(), 'test', '\\x00' from "audit_chain_head"`,
    );
  await withClient(db.url, (client) => client.query(`create role "${appLogin}" login in role patient_service_app`));
  const url = new URL(db.url);
  url.username = appLogin;
  url.password = "";
  appUrl = url.toString();
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
  // The role is cluster-wide: drop it once its database (and so its connections) is gone.
  await withClient(new URL("/postgres", db?.url ?? "postgres://postgres@127.0.0.1:5432/").toString(), (client) =>
    client.query(`drop role if exists "${appLogin}"`),
  );
});

/** The SQLSTATE and message a statement fails with, or "ok". */
async function attempt(client: pg.Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return "ok";
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return `${code}: ${message}`;
  }
}

describe("audit log immutability for the service's database role (RQ-PT004, TST-PT004-2 alongside)", () => {
  it("a trigger refuses UPDATE, DELETE and TRUNCATE of audit entries and checkpoints, even on the owner's connection", async () => {
    const em = orm.em.fork();
    const refused = async (sql: string) => expect(em.execute(sql)).rejects.toThrow(/append-only/);
    await refused(`update "audit_log" set "actor" = 'someone/else' where "sequence" = 1`);
    await refused(`delete from "audit_log" where "sequence" = 2`);
    await refused(`truncate "audit_log"`);
    await refused(`update "audit_checkpoints" set "key_id" = 'other'`);
    await refused(`delete from "audit_checkpoints"`);
    await refused(`truncate "audit_checkpoints"`);
    const count = await em.execute<{ n: string }[]>(`select count(*)::text as "n" from "audit_log"`);
    expect(count).toEqual([{ n: "3" }]);
  });

  it("the chain head may only move forward, and cannot be deleted or truncated", async () => {
    const em = orm.em.fork();
    await expect(em.execute(`update "audit_chain_head" set "sequence" = 1`)).rejects.toThrow(/only move forward/);
    await expect(em.execute(`delete from "audit_chain_head"`)).rejects.toThrow(/refused/);
    await expect(em.execute(`truncate "audit_chain_head"`)).rejects.toThrow(/refused/);
  });

  it("the triggers fire always: session_replication_role = replica does not switch them off", async () => {
    await withClient(db.url, async (client) => {
      await client.query("set session_replication_role = replica");
      expect(await attempt(client, `delete from "audit_log"`)).toMatch(/append-only/);
      expect(await attempt(client, `truncate "audit_log"`)).toMatch(/append-only/);
    });
  });

  it("a login in patient_service_app may read and append, but grants refuse UPDATE, DELETE and TRUNCATE", async () => {
    await withClient(appUrl, async (client) => {
      // Refused by the grants (42501), before any trigger runs.
      for (const sql of [
        `update "audit_log" set "actor" = 'someone/else' where "sequence" = 1`,
        `delete from "audit_log" where "sequence" = 1`,
        `truncate "audit_log"`,
        `update "audit_checkpoints" set "key_id" = 'other'`,
        `delete from "audit_checkpoints"`,
        `truncate "audit_checkpoints"`,
        `delete from "audit_chain_head"`,
        `insert into "audit_chain_head" ("id", "sequence", "hash") values (2, 0, '\\x00')`,
        `alter table "audit_log" disable trigger "append_only"`,
      ]) {
        expect(await attempt(client, sql), sql).toMatch(/^42501: (permission denied|must be owner)/);
      }
      expect(await attempt(client, `select count(*) from "audit_log"`)).toBe("ok");
      expect(await attempt(client, `select count(*) from "audit_checkpoints"`)).toBe("ok");
    });
  });

  it("the service's writes work as that login: an AuditLog on its connection appends", async () => {
    const appOrm = await createOrm({ url: appUrl, poolMax: 1 });
    try {
      const log = new AuditLog(appOrm);
      await log.record(draft());
      await log.close();
      expect(log.stats.entries).toBe(1);
    } finally {
      await appOrm.close();
    }
  });

  it("ordinary tables stay fully writable for patient_service_app", async () => {
    await withClient(appUrl, async (client) => {
      expect(await attempt(client, `delete from "patients" where false`)).toBe("ok");
      expect(await attempt(client, `update "patients" set "version" = "version" where false`)).toBe("ok");
    });
  });
});
