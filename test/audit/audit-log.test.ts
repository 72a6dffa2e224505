import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditSink } from "../../src/audit/call-audit.ts";
import { AuditLog, AuditWriteError } from "../../src/audit/audit-log.ts";
import { verifyAuditChain } from "../../src/audit/audit-verifier.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import type { Clock } from "../../src/shared/clock.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { draft, sequences, withClient } from "./audit-fixtures.ts";

let db: TestDatabase;
let orm: Orm;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 4 });
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

/** The chain must verify after every test here; none of them tampers. */
async function expectIntact(): Promise<void> {
  const result = await verifyAuditChain(orm.em.fork(), new Map());
  expect(result).toMatchObject({ intact: true, firstBrokenSequence: 0n });
}

async function headSequence(): Promise<number> {
  const rows = await withClient(db.url, (client) => client.query(`select "sequence" from "audit_chain_head"`));
  return Number(rows.rows[0].sequence);
}

describe("AuditLog.record: group commit (RQ-PT004, issue #3 'throughput matters')", () => {
  it("writes 500 concurrent entries as contiguous sequences in far fewer transactions, each durable on resolve", async () => {
    const log = new AuditLog(orm);
    const before = await headSequence();
    const drafts = Array.from({ length: 500 }, () => draft());
    await Promise.all(drafts.map((entry) => log.record(entry)));
    // Every caller has resolved: all 500 are committed and visible to another connection.
    const stored = await withClient(db.url, (client) =>
      client.query<{ sequence: string; request_id: string }>(
        `select "sequence", "request_id" from "audit_log" where "sequence" > $1 order by "sequence"`,
        [before],
      ),
    );
    expect(stored.rows.map((row) => Number(row.sequence))).toEqual(drafts.map((_, i) => before + i + 1));
    // Same-tick arrivals keep their order of arrival in the chain.
    expect(stored.rows.map((row) => row.request_id)).toEqual(drafts.map((entry) => entry.requestId));
    expect(log.stats.entries).toBe(500);
    expect(log.stats.batches).toBeLessThanOrEqual(5);
    expect(log.stats.largestBatch).toBeLessThanOrEqual(256);
    expect(await headSequence()).toBe(before + 500);
    await log.close();
    await expectIntact();
  });

  it("keeps batching while a batch is in flight: entries from many turns of the event loop share transactions", async () => {
    const log = new AuditLog(orm);
    const pending: Promise<void>[] = [];
    for (let turn = 0; turn < 50; turn++) {
      for (let i = 0; i < 4; i++) pending.push(log.record(draft()));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(pending);
    expect(log.stats.entries).toBe(200);
    expect(log.stats.batches).toBeLessThan(50);
    await log.close();
    await expectIntact();
  });

  it("lets two processes (two pools, two logs) append at once: they take turns on the head's lock", async () => {
    const other = await createOrm({ url: db.url, poolMax: 2 });
    try {
      const first = new AuditLog(orm, undefined, { maxBatchSize: 16 });
      const second = new AuditLog(other, undefined, { maxBatchSize: 16 });
      const before = await headSequence();
      await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? first : second).record(draft())));
      expect(await headSequence()).toBe(before + 300);
      const all = await sequences(db.url);
      expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
      await Promise.all([first.close(), second.close()]);
    } finally {
      await other.close();
    }
    await expectIntact();
  });

  it("stores the clock's time at record() and every field exactly as hashed, even awkward text", async () => {
    const at = new Date("2026-11-28T10:17:22.789Z");
    const clock: Clock = { now: () => at };
    const log = new AuditLog(orm, clock);
    const awkward = draft({
      actor: "patients/O'Brien \\ ? ?? $1",
      resource: "patients/x/records/😀",
      reason: "NUL\u0000 lone\ud800 surrogate",
      clientAddress: "::ffff:10.0.0.1",
    });
    await log.record(awkward);
    const row = await withClient(db.url, (client) =>
      client.query(
        `select "actor", "resource", "reason", "client_address", "event_time" from "audit_log" where "request_id" = $1`,
        [awkward.requestId],
      ),
    );
    expect(row.rows[0]).toMatchObject({
      actor: awkward.actor,
      resource: awkward.resource,
      reason: "NUL\uFFFD lone\uFFFD surrogate",
      client_address: "::ffff:10.0.0.1",
    });
    expect((row.rows[0].event_time as Date).toISOString()).toBe(at.toISOString());
    await log.close();
    await expectIntact();
  });

  it("rejects every caller of a failed batch, and the next batch carries on without a gap", async () => {
    // Make the database refuse one entry: the whole transaction (and so the batch) fails.
    await withClient(db.url, (client) =>
      client.query(`alter table "audit_log" add constraint "test_refuse" check ("reason" <> 'REFUSE_ME')`),
    );
    const log = new AuditLog(orm);
    try {
      const before = await headSequence();
      const results = await Promise.allSettled([
        log.record(draft()),
        log.record(draft({ reason: "REFUSE_ME" })),
        log.record(draft()),
      ]);
      expect(results.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
      const failure = (results[0] as PromiseRejectedResult).reason as AuditWriteError;
      expect(failure).toBeInstanceOf(AuditWriteError);
      // Loggable without leaking the entries: MikroORM's message quotes the SQL with them inlined.
      expect(failure.code).toBe("23514");
      expect(JSON.stringify({ ...failure, message: failure.message })).not.toMatch(/REFUSE_ME|doctors\//);
      expect(failure.cause).toBeUndefined();
      expect(log.stats.failedBatches).toBe(1);
      expect(await headSequence()).toBe(before);
      await log.record(draft());
      expect(await headSequence()).toBe(before + 1);
    } finally {
      await withClient(db.url, (client) => client.query(`alter table "audit_log" drop constraint "test_refuse"`));
      await log.close();
    }
    await expectIntact();
  });

  it("rejects only the caller of a malformed draft, not its batch", async () => {
    const log = new AuditLog(orm);
    const results = await Promise.allSettled([
      log.record(draft()),
      log.record(draft({ subjectPatientId: "not-a-uuid" })),
      log.record(draft()),
    ]);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    await log.close();
  });

  it("close() waits for pending entries and refuses new ones", async () => {
    const log = new AuditLog(orm);
    const before = await headSequence();
    const pending = Array.from({ length: 20 }, () => log.record(draft()));
    await log.close();
    expect(await headSequence()).toBe(before + 20);
    await Promise.all(pending);
    await expect(log.record(draft())).rejects.toThrow(/closed/);
  });
});

describe("AuditLog.recordWithin: in the caller's transaction", () => {
  it("commits the entries with the caller's change", async () => {
    const log = new AuditLog(orm);
    const before = await headSequence();
    const requestId = randomUUID();
    await orm.em.fork().transactional(async (em) => {
      await log.recordWithin(em, [draft({ requestId }), draft({ requestId })]);
    });
    expect(await headSequence()).toBe(before + 2);
    await expectIntact();
  });

  it("leaves no entry and no gap when the caller's transaction rolls back", async () => {
    const log = new AuditLog(orm);
    const before = await headSequence();
    const requestId = randomUUID();
    await expect(
      orm.em.fork().transactional(async (em) => {
        await log.recordWithin(em, [draft({ requestId })]);
        throw new Error("the change failed");
      }),
    ).rejects.toThrow("the change failed");
    expect(await headSequence()).toBe(before);
    const left = await withClient(db.url, (client) =>
      client.query(`select 1 from "audit_log" where "request_id" = $1`, [requestId]),
    );
    expect(left.rowCount).toBe(0);
    // The next entry takes the sequence the rolled-back one had: no gap.
    await log.record(draft());
    const all = await sequences(db.url);
    expect(all.at(-1)).toBe(before + 1);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    await log.close();
    await expectIntact();
  });

  it("interleaves with group-committed entries from the same process", async () => {
    const log = new AuditLog(orm);
    const before = await headSequence();
    await Promise.all([
      ...Array.from({ length: 50 }, () => log.record(draft())),
      ...Array.from({ length: 5 }, () => orm.em.fork().transactional((em) => log.recordWithin(em, [draft(), draft()]))),
    ]);
    expect(await headSequence()).toBe(before + 60);
    await log.close();
    await expectIntact();
  });

  it("is the AuditSink the call pipeline writes to", () => {
    const sink: AuditSink = new AuditLog(orm);
    expect(typeof sink.recordWithin).toBe("function");
  });

  it("refuses an EntityManager outside a transaction", async () => {
    const log = new AuditLog(orm);
    await expect(log.recordWithin(orm.em.fork(), [draft()])).rejects.toThrow(/transaction/);
  });
});

describe("AuditLog.recordWith: a data change and its entries in one statement", () => {
  beforeAll(async () => {
    await withClient(db.url, (client) => client.query(`create table if not exists "scratch" ("id" uuid primary key)`));
  });

  /** A change that inserts `ids` into the scratch table, as a caller's CTE. */
  function scratchInsert(ids: readonly string[], name = "scratch-insert") {
    return {
      name,
      ctes: `"added" as (insert into "scratch" ("id") select unnest($1::uuid[]) returning 1)`,
      last: "added",
      values: [ids],
    };
  }

  async function scratchHas(id: string): Promise<boolean> {
    const found = await withClient(db.url, (client) => client.query(`select 1 from "scratch" where "id" = $1`, [id]));
    return found.rowCount === 1;
  }

  it("commits the change with the entries, in turn with group-committed entries", async () => {
    const log = new AuditLog(orm);
    const before = await headSequence();
    const ids = Array.from({ length: 5 }, () => randomUUID());
    const written = await Promise.all([
      ...Array.from({ length: 20 }, () => log.record(draft()).then(() => true)),
      ...ids.map((id) => log.recordWith([draft(), draft()], scratchInsert([id]))),
    ]);
    expect(written.every(Boolean)).toBe(true);
    for (const id of ids) expect(await scratchHas(id)).toBe(true);
    expect(await headSequence()).toBe(before + 30);
    await log.close();
    await expectIntact();
  });

  it("writes neither the change nor the entries when the change fails, and rejects with the database's error", async () => {
    const log = new AuditLog(orm);
    const taken = randomUUID();
    expect(await log.recordWith([draft()], scratchInsert([taken]))).toBe(true);
    const before = await headSequence();
    const fresh = randomUUID();
    const requestId = randomUUID();
    await expect(log.recordWith([draft({ requestId })], scratchInsert([fresh, taken]))).rejects.toMatchObject({
      code: "23505",
    });
    expect(await scratchHas(fresh)).toBe(false);
    expect(await headSequence()).toBe(before);
    const left = await withClient(db.url, (client) =>
      client.query(`select 1 from "audit_log" where "request_id" = $1`, [requestId]),
    );
    expect(left.rowCount).toBe(0);
    // The log goes on from the head it had.
    await log.record(draft());
    expect(await headSequence()).toBe(before + 1);
    await log.close();
    await expectIntact();
  });

  it("writes nothing and answers false when the change's guard fails", async () => {
    const log = new AuditLog(orm);
    const present = randomUUID();
    expect(await log.recordWith([draft()], scratchInsert([present]))).toBe(true);
    const before = await headSequence();
    const fresh = randomUUID();
    // Guarded on a row that is not there: the head must not move, so nothing commits.
    const guarded = {
      ...scratchInsert([fresh], "scratch-guarded"),
      guard: `exists (select 1 from "scratch" where "id" = '${randomUUID()}')`,
    };
    expect(await log.recordWith([draft()], guarded)).toBe(false);
    expect(await scratchHas(fresh)).toBe(false);
    expect(await headSequence()).toBe(before);
    // A guard that holds changes nothing about the write.
    const another = randomUUID();
    const holds = {
      ...scratchInsert([another], "scratch-guard-holds"),
      guard: `exists (select 1 from "scratch" where "id" = '${present}')`,
    };
    expect(await log.recordWith([draft(), draft()], holds)).toBe(true);
    expect(await scratchHas(another)).toBe(true);
    expect(await headSequence()).toBe(before + 2);
    expect(log.stats.failedBatches).toBe(0);
    await log.close();
    await expectIntact();
  });

  it("re-reads the head another process moved, and writes the change once", async () => {
    const ours = new AuditLog(orm);
    const theirs = new AuditLog(orm);
    await ours.record(draft()); // ours now knows the head
    await Promise.all(Array.from({ length: 3 }, () => theirs.record(draft())));
    const before = await headSequence();
    const id = randomUUID();
    expect(await ours.recordWith([draft(), draft()], scratchInsert([id]))).toBe(true);
    expect(await scratchHas(id)).toBe(true);
    expect(await headSequence()).toBe(before + 2);
    await Promise.all([ours.close(), theirs.close()]);
    await expectIntact();
  });
});
