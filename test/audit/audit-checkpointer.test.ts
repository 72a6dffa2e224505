import { generateKeyPairSync, verify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointMessage } from "../../src/audit/audit-chain.ts";
import { AuditCheckpointer, auditKeyId } from "../../src/audit/audit-checkpointer.ts";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import type { Clock } from "../../src/shared/clock.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { draft, withClient } from "./audit-fixtures.ts";

const signer = generateKeyPairSync("ed25519");
let db: TestDatabase;
let orm: Orm;
let log: AuditLog;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 3 });
  log = new AuditLog(orm);
});

afterAll(async () => {
  await log?.close();
  await orm?.close();
  await db?.drop();
});

async function checkpointCount(): Promise<number> {
  const result = await withClient(db.url, (client) =>
    client.query(`select count(*)::int as "n" from "audit_checkpoints"`),
  );
  return result.rows[0].n as number;
}

describe("AuditCheckpointer: signed checkpoints of the chain head", () => {
  it("signs nothing while the chain is empty", async () => {
    const checkpointer = new AuditCheckpointer(orm, { signingKey: signer.privateKey, intervalMs: 0 });
    expect(await checkpointer.checkpointNow()).toBeUndefined();
    expect(await checkpointCount()).toBe(0);
  });

  it("signs {sequence, hash, time} of the head with Ed25519 under the key's id, once per head position", async () => {
    const at = new Date("2026-11-28T12:00:00.123Z");
    const clock: Clock = { now: () => at };
    const checkpointer = new AuditCheckpointer(orm, { signingKey: signer.privateKey, clock, intervalMs: 0 });
    await Promise.all([log.record(draft()), log.record(draft())]);
    const checkpoint = await checkpointer.checkpointNow();
    expect(checkpoint).toMatchObject({
      sequence: 2n,
      signedAt: "2026-11-28T12:00:00.123000Z",
      keyId: auditKeyId(signer.publicKey),
    });
    const stored = await withClient(db.url, (client) =>
      client.query(
        `select "sequence"::text, encode("hash", 'hex') as "hash", "key_id", "signature", "signed_at" from "audit_checkpoints" where "sequence" = 2`,
      ),
    );
    const row = stored.rows[0];
    expect(row.hash).toBe(checkpoint?.hash);
    expect((row.signed_at as Date).toISOString()).toBe(at.toISOString());
    expect(
      verify(null, checkpointMessage(2n, row.hash, checkpoint?.signedAt ?? ""), signer.publicKey, row.signature),
    ).toBe(true);
    // The head has not moved: nothing new to sign.
    expect(await checkpointer.checkpointNow()).toBeUndefined();
  });

  it("runs on its interval only when the head moved, and once more on close", async () => {
    const checkpointer = new AuditCheckpointer(orm, { signingKey: signer.privateKey, intervalMs: 25 });
    const before = await checkpointCount();
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await checkpointCount()).toBe(before);
    await log.record(draft());
    await expect.poll(checkpointCount, { timeout: 2000, interval: 20 }).toBe(before + 1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await checkpointCount()).toBe(before + 1);
    await log.record(draft());
    await checkpointer.close();
    expect(await checkpointCount()).toBe(before + 2);
  });

  it("lets replicas checkpoint the same head at once: one row per sequence", async () => {
    const replicas = [0, 1, 2].map(
      () => new AuditCheckpointer(orm, { signingKey: signer.privateKey, keyId: "audit-2026", intervalMs: 0 }),
    );
    await log.record(draft());
    const before = await checkpointCount();
    const results = await Promise.all(replicas.map((replica) => replica.checkpointNow()));
    expect(results.filter((result) => result !== undefined)).toHaveLength(1);
    expect(await checkpointCount()).toBe(before + 1);
  });

  it("refuses a key that is not an Ed25519 private key", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(() => new AuditCheckpointer(orm, { signingKey: rsa.privateKey })).toThrow(/Ed25519/);
    expect(() => new AuditCheckpointer(orm, { signingKey: signer.publicKey })).toThrow(/Ed25519/);
  });
});
