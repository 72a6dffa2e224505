import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { nativePoolOf } from "../../src/db/native-pool.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import type { PatientFields } from "../../src/patients/patient.ts";
import { PatientRepository } from "../../src/patients/patient-repository.ts";
import { testPatientSealer } from "../support/test-crypto.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
let orm: Orm;
let patients: PatientRepository;
const sealer = testPatientSealer();

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 4 });
  patients = new PatientRepository(orm, sealer);
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

/** A complete profile with a unique email, so tests never collide with each other. */
function profile(overrides: Partial<PatientFields> = {}): PatientFields {
  return {
    legalName: { given: "Asha", family: "Rao" },
    birthDate: { year: 1990, month: 4, day: 2 },
    sex: "female",
    contact: {
      email: `asha.${randomUUID()}@example.com`,
      phone: "+919812345678",
      address: {
        lines: ["12 MG Road", "Flat 4"],
        locality: "Bengaluru",
        region: "KA",
        postalCode: "560001",
        regionCode: "IN",
      },
    },
    preferredLanguage: "en-IN",
    upiId: "asha@okaxis",
    insurance: {
      provider: "Star Health",
      policyNumber: "P-1",
      memberId: "M-1",
      validUntil: { year: 2027, month: 3, day: 31 },
    },
    emergencyContacts: [{ displayName: "Ravi Rao", relationship: "spouse", phone: "+919800000000" }],
    ...overrides,
  };
}

function withEmail(email: string): PatientFields {
  const base = profile();
  return { ...base, contact: { ...base.contact, email } };
}

describe("TST-PT002 create and read a patient profile", () => {
  it("stores every field and reads back the same profile", async () => {
    const fields = profile();
    const created = await patients.create(fields);
    expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(created.version).toBe(1);
    expect(created.createTime).toEqual(created.updateTime);
    expect(await patients.get(created.id)).toEqual({ ...fields, ...created });
    expect(await patients.get(created.id)).toEqual(created);
  });

  it("keeps names with quotes, backslashes and non-Latin letters intact", async () => {
    const created = await patients.create(profile({ legalName: { given: "आशा 'A' \\ \"B\"", family: "O'Brien?" } }));
    expect((await patients.get(created.id)).legalName).toEqual({ given: "आशा 'A' \\ \"B\"", family: "O'Brien?" });
  });

  it("stores a profile without optional parts", async () => {
    const base = profile();
    const fields = {
      ...base,
      insurance: undefined,
      emergencyContacts: [],
      contact: { ...base.contact, phone: "", address: undefined },
    };
    const created = await patients.create(fields);
    const read = await patients.get(created.id);
    expect(read.insurance).toBeUndefined();
    expect(read.contact.address).toBeUndefined();
    expect(read.emergencyContacts).toEqual([]);
  });

  it("refuses a profile without a birth date", async () => {
    await expect(patients.create(profile({ birthDate: undefined }))).rejects.toMatchObject({
      kind: "invalid-argument",
    });
  });

  it("answers NOT_FOUND for an unknown id and for an id that is not a UUID", async () => {
    await expect(patients.get(randomUUID())).rejects.toMatchObject({ kind: "not-found", reason: "PATIENT_NOT_FOUND" });
    await expect(patients.get("not-a-uuid")).rejects.toMatchObject({ kind: "not-found" });
  });
});

describe("create with a request id (AIP-155)", () => {
  it("returns the first profile when the same request is retried", async () => {
    const requestId = randomUUID();
    const fields = profile();
    const first = await patients.create(fields, requestId);
    const retry = await patients.create(fields, requestId);
    expect(retry).toEqual(first);
  });

  it("makes one profile when the same request arrives twice at once", async () => {
    const requestId = randomUUID();
    const fields = profile();
    const [a, b] = await Promise.all([patients.create(fields, requestId), patients.create(fields, requestId)]);
    expect(a.id).toBe(b.id);
  });

  it("answers NOT_FOUND to a retry whose profile was deleted since", async () => {
    const requestId = randomUUID();
    const fields = profile();
    const created = await patients.create(fields, requestId);
    await patients.delete(created.id);
    await expect(patients.create(fields, requestId)).rejects.toMatchObject({ kind: "not-found" });
  });

  it("refuses a request id reused for another patient", async () => {
    const requestId = randomUUID();
    await patients.create(profile(), requestId);
    await expect(patients.create(profile(), requestId)).rejects.toMatchObject({
      kind: "invalid-argument",
      reason: "REQUEST_ID_REUSED",
    });
  });
});

describe.each([
  ["in a caller's EntityManager", "em"],
  ["as a named statement on the ORM's pool", "pool"],
] as const)("creates issued together share one INSERT, each with its own outcome (%s)", (_, where) => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /**
   * A repository and how many INSERT batches it ran: in an EntityManager of its own, the
   * forks it took (one per batch); on the pool (the service's repository), the pool's
   * named INSERTs, counted by a spy on the real pool.
   */
  async function countingRepository(): Promise<{ repository: PatientRepository; batches: () => number }> {
    if (where === "pool") {
      const query = vi.spyOn(await nativePoolOf(orm)(), "query");
      const inserts = () =>
        query.mock.calls.filter(([config]) => (config as { name?: string }).name === "patients-insert").length;
      return { repository: new PatientRepository(orm, sealer), batches: inserts };
    }
    let forks = 0;
    const repository = new PatientRepository(() => {
      forks++;
      return orm.em.fork();
    }, sealer);
    return { repository, batches: () => forks };
  }

  async function storedRows(where: string, value: string): Promise<number> {
    const [{ count }] = (await orm.em
      .fork()
      .execute(`select count(*)::int as "count" from "patients" where ${where} = ?`, [value])) as [{ count: number }];
    return count;
  }

  /** Rows stored with this email (found by its blind index: the address itself is sealed). */
  async function storedEmails(email: string): Promise<number> {
    const [{ count }] = (await orm.em
      .fork()
      .execute(`select count(*)::int as "count" from "patients" where "email_index" = ?`, [
        sealer.emailIndex(email),
      ])) as [{ count: number }];
    return count;
  }

  it("lets exactly one of two creates with the same email win; the others are stored", async () => {
    const { repository, batches } = await countingRepository();
    const email = `twin.${randomUUID()}@example.com`;
    const inputs = [profile(), withEmail(email), profile(), withEmail(email.toUpperCase()), profile()];
    const results = await Promise.allSettled(inputs.map((fields) => repository.create(fields)));
    expect(batches()).toBe(1);
    const rejected = results.filter((result) => result.status === "rejected");
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.reason).toMatchObject({ kind: "already-exists", reason: "EMAIL_ALREADY_REGISTERED" });
    const created = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    expect(created).toHaveLength(4);
    for (const patient of created) expect(await patients.get(patient.id)).toEqual(patient);
    expect(await storedEmails(email)).toBe(1);
  });

  it("refuses every create of a batch whose email a live profile has, and stores the rest", async () => {
    const taken = await patients.create(profile());
    const { repository, batches } = await countingRepository();
    const results = await Promise.allSettled([
      repository.create(withEmail(taken.contact.email), randomUUID()),
      repository.create(profile()),
      repository.create(withEmail(taken.contact.email)),
    ]);
    expect(batches()).toBe(1);
    expect(results.map((result) => result.status)).toEqual(["rejected", "fulfilled", "rejected"]);
    for (const result of results) {
      if (result.status === "rejected") expect(result.reason).toMatchObject({ reason: "EMAIL_ALREADY_REGISTERED" });
    }
  });

  it("answers creates with the same request id with one profile, stored once", async () => {
    const { repository, batches } = await countingRepository();
    const requestId = randomUUID();
    const fields = profile();
    const [a, b, other] = await Promise.all([
      repository.create(fields, requestId),
      repository.create(fields, requestId),
      repository.create(profile()),
    ]);
    expect(batches()).toBe(1);
    expect(b).toEqual(a);
    expect(other.id).not.toBe(a.id);
    expect(await patients.get(a.id)).toEqual(a);
    expect(await storedRows('"create_request_id"', requestId)).toBe(1);
    expect(await storedEmails(fields.contact.email)).toBe(1);
  });

  it("replays a stored create in a batch, and answers NOT_FOUND to one whose profile was deleted", async () => {
    const liveRequest = randomUUID();
    const deletedRequest = randomUUID();
    const live = profile();
    const deleted = profile();
    const first = await patients.create(live, liveRequest);
    await patients.delete((await patients.create(deleted, deletedRequest)).id);
    const { repository, batches } = await countingRepository();
    const results = await Promise.allSettled([
      repository.create(deleted, deletedRequest),
      repository.create(live, liveRequest),
      repository.create(profile(), randomUUID()),
    ]);
    expect(batches()).toBe(1);
    const [gone, replay, fresh] = results;
    expect(gone?.status === "rejected" && gone.reason).toMatchObject({ kind: "not-found" });
    expect(replay?.status === "fulfilled" && replay.value).toEqual(first);
    expect(fresh?.status).toBe("fulfilled");
    // The deleted profile's email is free again, but a retry must not take it.
    expect(await storedRows('"create_request_id"', deletedRequest)).toBe(1);
  });

  it("refuses a request id reused for another email, in the batch and against a stored profile", async () => {
    const stored = randomUUID();
    await patients.create(profile(), stored);
    const shared = randomUUID();
    const { repository, batches } = await countingRepository();
    const results = await Promise.allSettled([
      repository.create(profile(), shared),
      repository.create(profile(), shared),
      repository.create(profile(), stored),
      repository.create(profile()),
    ]);
    expect(batches()).toBe(1);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    for (const result of results) {
      if (result.status === "rejected") {
        expect(result.reason).toMatchObject({ kind: "invalid-argument", reason: "REQUEST_ID_REUSED" });
      }
    }
    expect(await storedRows('"create_request_id"', shared)).toBe(1);
  });

  it("splits more creates than one batch holds into several INSERTs, and stores them all", async () => {
    const { repository, batches } = await countingRepository();
    const email = `spread.${randomUUID()}@example.com`;
    // The same email at both ends: the two creates land in different batches.
    const inputs = [withEmail(email), ...Array.from({ length: 68 }, () => profile()), withEmail(email)];
    const results = await Promise.allSettled(inputs.map((fields) => repository.create(fields)));
    expect(batches()).toBe(3);
    const created = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    expect(created).toHaveLength(69);
    expect(new Set(created.map((patient) => patient.id)).size).toBe(69);
    expect(results.filter((result) => result.status === "rejected")).toHaveLength(1);
    expect(await storedEmails(email)).toBe(1);
  });

  it("fails only the create whose row the database refuses", async () => {
    const { repository, batches } = await countingRepository();
    const tooLong = profile({ legalName: { given: "A".repeat(101), family: "Rao" } });
    const results = await Promise.allSettled([
      repository.create(profile()),
      repository.create(tooLong),
      repository.create(profile(), randomUUID()),
    ]);
    // One batch; on the pool each statement counts: the refused INSERT, then each create alone.
    expect(batches()).toBe(where === "pool" ? 4 : 1);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(await storedEmails(tooLong.contact.email)).toBe(0);
  });
});

describe("TST-PT002 update a patient profile", () => {
  it("changes only the given fields and bumps the version", async () => {
    const created = await patients.create(profile());
    const updated = await patients.update(created.id, { preferredLanguage: "hi", upiId: "asha@ybl" });
    expect(updated).toEqual({
      ...created,
      preferredLanguage: "hi",
      upiId: "asha@ybl",
      version: 2,
      updateTime: updated.updateTime,
    });
    expect(updated.updateTime.getTime()).toBeGreaterThanOrEqual(created.updateTime.getTime());
    expect(await patients.get(created.id)).toEqual(updated);
  });

  it("clears the insurance when it is given as undefined", async () => {
    const created = await patients.create(profile());
    const updated = await patients.update(created.id, { insurance: undefined });
    expect(updated.insurance).toBeUndefined();
    expect(updated.legalName).toEqual(created.legalName);
  });

  it("applies a change made against the current version", async () => {
    const created = await patients.create(profile());
    const updated = await patients.update(created.id, { sex: "undisclosed" }, created.version);
    expect(updated.sex).toBe("undisclosed");
  });

  it("rejects a change made against a stale version with ABORTED ETAG_MISMATCH", async () => {
    const created = await patients.create(profile());
    await patients.update(created.id, { upiId: "first@okaxis" }, 1);
    await expect(patients.update(created.id, { upiId: "second@okaxis" }, 1)).rejects.toMatchObject({
      kind: "aborted",
      reason: "ETAG_MISMATCH",
    });
    expect((await patients.get(created.id)).upiId).toBe("first@okaxis");
  });

  it("lets exactly one of two concurrent updates of the same version win", async () => {
    const created = await patients.create(profile());
    const results = await Promise.allSettled([
      patients.update(created.id, { upiId: "a@okaxis" }, 1),
      patients.update(created.id, { upiId: "b@okaxis" }, 1),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected");
    expect(rejected?.status === "rejected" && rejected.reason).toMatchObject({ reason: "ETAG_MISMATCH" });
  });

  it("writes nothing for an empty change, but still checks the version", async () => {
    const created = await patients.create(profile());
    expect(await patients.update(created.id, {})).toEqual(created);
    await expect(patients.update(created.id, {}, 7)).rejects.toMatchObject({ reason: "ETAG_MISMATCH" });
  });

  it("answers NOT_FOUND for an unknown patient", async () => {
    await expect(patients.update(randomUUID(), { upiId: "x@okaxis" })).rejects.toMatchObject({ kind: "not-found" });
    await expect(patients.update(randomUUID(), { upiId: "x@okaxis" }, 1)).rejects.toMatchObject({ kind: "not-found" });
  });
});

describe("TST-PT002 delete a patient profile", () => {
  it("makes the profile unreadable everywhere", async () => {
    const created = await patients.create(profile());
    await patients.delete(created.id);
    await expect(patients.get(created.id)).rejects.toMatchObject({ kind: "not-found" });
    await expect(patients.update(created.id, { upiId: "x@okaxis" })).rejects.toMatchObject({ kind: "not-found" });
    await expect(patients.delete(created.id)).rejects.toMatchObject({ kind: "not-found" });
    const listed = await listAll(100);
    expect(listed.map((p) => p.id)).not.toContain(created.id);
  });

  it("keeps the row, for what the law requires", async () => {
    const created = await patients.create(profile());
    await patients.delete(created.id);
    const rows = await orm.em.fork().execute('select "deleted_at" from "patients" where "id" = ?', [created.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.deleted_at).not.toBeNull();
  });

  it("refuses a delete against a stale version and keeps the profile", async () => {
    const created = await patients.create(profile());
    await patients.update(created.id, { upiId: "new@okaxis" });
    await expect(patients.delete(created.id, 1)).rejects.toMatchObject({ kind: "aborted", reason: "ETAG_MISMATCH" });
    await patients.delete(created.id, 2);
    await expect(patients.get(created.id)).rejects.toMatchObject({ kind: "not-found" });
  });
});

describe("email uniqueness", () => {
  it("refuses a second profile with the same email, without echoing it", async () => {
    const email = `dup.${randomUUID()}@example.com`;
    await patients.create(withEmail(email));
    const attempt = patients.create(withEmail(email));
    await expect(attempt).rejects.toMatchObject({ kind: "already-exists", reason: "EMAIL_ALREADY_REGISTERED" });
    await expect(attempt).rejects.not.toHaveProperty("message", expect.stringContaining(email));
  });

  it("ignores case, and stores the email lowercased", async () => {
    const email = `Case.${randomUUID()}@Example.COM`;
    const created = await patients.create(withEmail(email));
    expect(created.contact.email).toBe(email.toLowerCase());
    await expect(patients.create(withEmail(email.toUpperCase()))).rejects.toMatchObject({
      reason: "EMAIL_ALREADY_REGISTERED",
    });
  });

  it("refuses an update to an email another profile has", async () => {
    const taken = await patients.create(profile());
    const other = await patients.create(profile());
    await expect(
      patients.update(other.id, { contact: { ...other.contact, email: taken.contact.email } }),
    ).rejects.toMatchObject({
      kind: "already-exists",
      reason: "EMAIL_ALREADY_REGISTERED",
    });
  });

  it("frees the email of a deleted profile", async () => {
    const email = `reuse.${randomUUID()}@example.com`;
    const first = await patients.create(withEmail(email));
    await patients.delete(first.id);
    const second = await patients.create(withEmail(email));
    expect(second.id).not.toBe(first.id);
  });
});

describe("list", () => {
  it("pages through every live profile, newest first, without gaps or repeats", async () => {
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await patients.create(profile()));
    await patients.delete(made[3]?.id ?? "");
    const all = await listAll(3);
    const ids = all.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const [{ count }] = (await orm.em
      .fork()
      .execute('select count(*)::int as "count" from "patients" where "deleted_at" is null')) as [{ count: number }];
    expect(ids).toHaveLength(count);
    const ours = made
      .filter((_, i) => i !== 3)
      .map((p) => p.id)
      .reverse();
    expect(ids.filter((id) => ours.includes(id))).toEqual(ours);
    for (let i = 1; i < all.length; i++) {
      const [newer, older] = [all[i - 1], all[i]];
      expect(newer && older && newer.createTime.getTime() >= older.createTime.getTime()).toBe(true);
    }
  });

  it("returns no cursor on the last page", async () => {
    const page = await patients.list({ pageSize: 1000 });
    expect(page.nextCursor).toBeUndefined();
  });

  it("refuses a cursor it did not make", async () => {
    await expect(
      patients.list({ pageSize: 10, after: { createTime: "yesterday", id: randomUUID() } }),
    ).rejects.toMatchObject({
      kind: "invalid-argument",
    });
    await expect(
      patients.list({ pageSize: 10, after: { createTime: new Date().toISOString(), id: "1 or 1=1" } }),
    ).rejects.toMatchObject({
      kind: "invalid-argument",
    });
  });
});

/** Follows cursors to the end, checking every page's size on the way. */
async function listAll(pageSize: number) {
  const seen = [];
  let after: Record<string, unknown> | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await patients.list({ pageSize, after });
    expect(page.patients.length).toBeLessThanOrEqual(pageSize);
    seen.push(...page.patients);
    if (page.nextCursor === undefined) return seen;
    expect(page.patients).toHaveLength(pageSize);
    after = page.nextCursor;
  }
  throw new Error("list did not end");
}
