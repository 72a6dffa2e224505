import { execFile } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { entryHash, isoMicrosSql } from "../../src/audit/audit-chain.ts";
import { AuditCheckpointer, auditKeyId } from "../../src/audit/audit-checkpointer.ts";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { AuditChainBreak, verifyAuditChain } from "../../src/audit/audit-verifier.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { draft, tamper } from "./audit-fixtures.ts";

// Issue #3: "detection of an edit, a deletion and a cut tail made as a superuser", and
// `npm run audit:verify` reports the first broken entry. Each test tampers with a chain
// of its own, in a database of its own.

const signer = generateKeyPairSync("ed25519");
const publicKeys = new Map<string, KeyObject>([[auditKeyId(signer.publicKey), signer.publicKey]]);
let keyDir: string;
let verifyKeyFile: string;
let signingKeyFile: string;

beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), "audit-keys-"));
  verifyKeyFile = join(keyDir, "audit-verify.pem");
  signingKeyFile = join(keyDir, "audit-signing.pem");
  await writeFile(verifyKeyFile, signer.publicKey.export({ format: "pem", type: "spki" }));
  await writeFile(signingKeyFile, signer.privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
});

afterAll(async () => {
  await rm(keyDir, { recursive: true, force: true });
});

interface Chain {
  readonly db: TestDatabase;
  readonly orm: Orm;
}
const opened: Chain[] = [];

afterEach(async () => {
  for (const chain of opened.splice(0)) {
    await chain.orm.close();
    await chain.db.drop();
  }
});

/** A database with `entries` audit entries and a signed checkpoint of the head after `checkpointAt` of them. */
async function chainOf(entries: number, checkpointAt = entries): Promise<Chain> {
  const db = await createTestDatabase();
  const orm = await createOrm({ url: db.url, poolMax: 2 });
  opened.push({ db, orm });
  const log = new AuditLog(orm);
  const checkpointer = new AuditCheckpointer(orm, { signingKey: signer.privateKey, intervalMs: 0 });
  await Promise.all(Array.from({ length: checkpointAt }, () => log.record(draft())));
  if (checkpointAt > 0) expect(await checkpointer.checkpointNow()).toMatchObject({ sequence: BigInt(checkpointAt) });
  await Promise.all(Array.from({ length: entries - checkpointAt }, () => log.record(draft())));
  await log.close();
  return { db, orm };
}

function verify(chain: Chain, options: { pageSize?: number } = {}) {
  return verifyAuditChain(chain.orm.em.fork(), publicKeys, options);
}

describe("audit chain verification detects tampering made as a superuser (RQ-PT004)", () => {
  it("an untouched chain verifies, across page boundaries", async () => {
    const chain = await chainOf(30, 25);
    expect(await verify(chain, { pageSize: 7 })).toMatchObject({
      intact: true,
      entriesChecked: 30n,
      headSequence: 30n,
      firstBrokenSequence: 0n,
      breakKind: AuditChainBreak.UNSPECIFIED,
      checkpointSequence: 25n,
    });
  });

  it("an edited entry: BREAK_HASH_MISMATCH at that sequence", async () => {
    const chain = await chainOf(20);
    await tamper(chain.db.url, `update "audit_log" set "actor" = 'doctors/someone-else' where "sequence" = 12`);
    expect(await verify(chain, { pageSize: 5 })).toMatchObject({
      intact: false,
      firstBrokenSequence: 12n,
      breakKind: AuditChainBreak.HASH_MISMATCH,
    });
  });

  it("an edited entry whose hash was recomputed: the next entry's link breaks", async () => {
    const chain = await chainOf(20);
    // A forger can recompute entry 12's own hash, but not the links after it without redoing the whole tail.
    await tamper(chain.db.url, `update "audit_log" set "hash" = sha256("hash") where "sequence" = 12`);
    expect(await verify(chain)).toMatchObject({ firstBrokenSequence: 12n, breakKind: AuditChainBreak.HASH_MISMATCH });
  });

  it("an edit with the rest of the chain recomputed to link up: the signed checkpoint's hash no longer matches", async () => {
    const chain = await chainOf(10);
    // The algorithm is public: a forger can edit entry 9 and recompute every hash after
    // it and the head. Only the checkpoint's signed hash, which needs the key, stays.
    await tamper(chain.db.url, `update "audit_log" set "reason" = 'EDITED' where "sequence" = 9`);
    const rows = await chain.orm.em
      .fork()
      .execute<Record<string, string>[]>(
        `select "sequence"::text as "seq", ${isoMicrosSql('"event_time"')} as "time", "actor", "actor_role", ` +
          `"subject_patient_id"::text as "subject", "proxy", "action", "resource", "outcome", "rpc", "request_id", ` +
          `"client_address", "reason", encode("prev_hash", 'hex') as "prev" from "audit_log" where "sequence" >= 9 order by "audit_log"."sequence"`,
      );
    let prev = rows[0]?.prev ?? "";
    const rewrites: string[] = [];
    for (const row of rows) {
      const hash = entryHash(prev, BigInt(row.seq ?? ""), {
        eventTime: row.time ?? "",
        actor: row.actor ?? "",
        actorRole: row.actor_role ?? "",
        subjectPatientId: row.subject ?? null,
        proxy: row.proxy as unknown as boolean,
        action: row.action ?? "",
        resource: row.resource ?? "",
        outcome: row.outcome ?? "",
        rpc: row.rpc ?? "",
        requestId: row.request_id ?? "",
        clientAddress: row.client_address ?? "",
        reason: row.reason ?? "",
      });
      rewrites.push(
        `update "audit_log" set "prev_hash" = decode('${prev}', 'hex'), "hash" = decode('${hash}', 'hex') where "sequence" = ${row.seq}`,
      );
      prev = hash;
    }
    rewrites.push(`update "audit_chain_head" set "hash" = decode('${prev}', 'hex')`);
    await tamper(chain.db.url, ...rewrites);
    expect(await verify(chain)).toMatchObject({
      intact: false,
      firstBrokenSequence: 10n,
      breakKind: AuditChainBreak.HASH_MISMATCH,
    });
  });

  it("a deleted entry: BREAK_MISSING_ENTRY at its sequence", async () => {
    const chain = await chainOf(20);
    await tamper(chain.db.url, `delete from "audit_log" where "sequence" = 7`);
    expect(await verify(chain, { pageSize: 5 })).toMatchObject({
      intact: false,
      firstBrokenSequence: 7n,
      breakKind: AuditChainBreak.MISSING_ENTRY,
    });
  });

  it("a deleted first entry: BREAK_MISSING_ENTRY at 1", async () => {
    const chain = await chainOf(5);
    await tamper(chain.db.url, `delete from "audit_log" where "sequence" = 1`);
    expect(await verify(chain)).toMatchObject({ firstBrokenSequence: 1n, breakKind: AuditChainBreak.MISSING_ENTRY });
  });

  it("a cut tail with the head rewound to match: BREAK_TRUNCATED, thanks to the checkpoint", async () => {
    const chain = await chainOf(20);
    await tamper(
      chain.db.url,
      `delete from "audit_log" where "sequence" > 15`,
      `update "audit_chain_head" set ("sequence", "hash") = (select "sequence", "hash" from "audit_log" where "sequence" = 15)`,
    );
    expect(await verify(chain)).toMatchObject({
      intact: false,
      headSequence: 15n,
      firstBrokenSequence: 16n,
      breakKind: AuditChainBreak.TRUNCATED,
      checkpointSequence: 20n,
    });
  });

  it("a cut tail with the head left alone: BREAK_TRUNCATED where the entries stop", async () => {
    const chain = await chainOf(20, 10);
    await tamper(chain.db.url, `delete from "audit_log" where "sequence" > 17`);
    expect(await verify(chain)).toMatchObject({ firstBrokenSequence: 18n, breakKind: AuditChainBreak.TRUNCATED });
  });

  it("a forged checkpoint signature: BREAK_CHECKPOINT_INVALID at the checkpoint", async () => {
    const chain = await chainOf(12, 12);
    await tamper(chain.db.url, `update "audit_checkpoints" set "signature" = sha512('forged'::bytea)`);
    expect(await verify(chain)).toMatchObject({
      intact: false,
      firstBrokenSequence: 12n,
      breakKind: AuditChainBreak.CHECKPOINT_INVALID,
    });
  });

  it("a checkpoint signed by a key the verifier does not trust: BREAK_CHECKPOINT_INVALID", async () => {
    const chain = await chainOf(4, 4);
    const stranger = generateKeyPairSync("ed25519").publicKey;
    const result = await verifyAuditChain(chain.orm.em.fork(), new Map([[auditKeyId(stranger), stranger]]));
    expect(result).toMatchObject({ firstBrokenSequence: 4n, breakKind: AuditChainBreak.CHECKPOINT_INVALID });
  });

  it("reports the first break when there are several", async () => {
    const chain = await chainOf(20);
    await tamper(
      chain.db.url,
      `delete from "audit_log" where "sequence" = 15`,
      `update "audit_log" set "reason" = 'EDITED' where "sequence" = 9`,
    );
    expect(await verify(chain)).toMatchObject({ firstBrokenSequence: 9n, breakKind: AuditChainBreak.HASH_MISMATCH });
  });

  it("checks a range: start_sequence trusts the entry before it, max_entries bounds the walk", async () => {
    const chain = await chainOf(30, 30);
    await tamper(chain.db.url, `update "audit_log" set "reason" = 'EDITED' where "sequence" = 3`);
    const em = () => chain.orm.em.fork();
    expect(await verifyAuditChain(em(), publicKeys, { startSequence: 10 })).toMatchObject({
      intact: true,
      entriesChecked: 21n,
    });
    expect(await verifyAuditChain(em(), publicKeys, { startSequence: 10, maxEntries: 5 })).toMatchObject({
      intact: true,
      entriesChecked: 5n,
    });
    expect(await verifyAuditChain(em(), publicKeys, { maxEntries: 5 })).toMatchObject({
      firstBrokenSequence: 3n,
      breakKind: AuditChainBreak.HASH_MISMATCH,
    });
  });
});

describe("npm run audit:verify", () => {
  const run = promisify(execFile);

  async function auditVerify(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run("npm", ["run", "--silent", "audit:verify"], {
        cwd: process.cwd(),
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  it("exits 0 for an intact chain, with the verify key or the signing key", async () => {
    const chain = await chainOf(8);
    const withPublic = await auditVerify({ DATABASE_URL: chain.db.url, AUDIT_VERIFY_KEY_FILE: verifyKeyFile });
    expect(withPublic).toMatchObject({ code: 0 });
    expect(withPublic.stdout).toMatch(/^audit chain intact: 8 entries checked, head 8 [0-9a-f]{64}, checkpoint 8 of /);
    const withPrivate = await auditVerify({ DATABASE_URL: chain.db.url, AUDIT_SIGNING_KEY_FILE: signingKeyFile });
    expect(withPrivate).toMatchObject({ code: 0 });
  });

  it("exits 1 after an edit, printing the first broken sequence and kind and nothing of the entries", async () => {
    const chain = await chainOf(8);
    await tamper(chain.db.url, `update "audit_log" set "actor" = 'doctors/forged' where "sequence" = 5`);
    const result = await auditVerify({ DATABASE_URL: chain.db.url, AUDIT_VERIFY_KEY_FILE: verifyKeyFile });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^audit chain BROKEN at sequence 5: HASH_MISMATCH/);
    expect(result.stdout + result.stderr).not.toMatch(/doctors|patients\//);
  });

  it("exits 1 after a cut tail", async () => {
    const chain = await chainOf(8);
    await tamper(
      chain.db.url,
      `delete from "audit_log" where "sequence" > 6`,
      `update "audit_chain_head" set ("sequence", "hash") = (select "sequence", "hash" from "audit_log" where "sequence" = 6)`,
    );
    const result = await auditVerify({ DATABASE_URL: chain.db.url, AUDIT_VERIFY_KEY_FILE: verifyKeyFile });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/BROKEN at sequence 7: TRUNCATED/);
  });

  it("exits 2 without DATABASE_URL or without a key", async () => {
    const noUrl = await auditVerify({ AUDIT_VERIFY_KEY_FILE: verifyKeyFile });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/DATABASE_URL is required/);
    const noKey = await auditVerify({ DATABASE_URL: "postgres://postgres@127.0.0.1:5432/postgres" });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/AUDIT_VERIFY_KEY_FILE/);
  });
});
