import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import { FamilyAccess } from "../../src/family/family-access.ts";
import type { LinkState } from "../../src/family/family-link.ts";
import { FamilyLinkRepository, type NewLink } from "../../src/family/family-link-repository.ts";
import type { Patient } from "../../src/patients/patient.ts";
import { PatientRepository } from "../../src/patients/patient-repository.ts";
import { uuidV7 } from "../../src/shared/uuid-v7.ts";
import { testPatientSealer } from "../support/test-crypto.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { ManualClock, profile } from "./family-fixtures.ts";

let db: TestDatabase;
let orm: Orm;
let patients: PatientRepository;
let links: FamilyLinkRepository;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 4 });
  patients = new PatientRepository(orm, testPatientSealer());
  links = new FamilyLinkRepository(orm);
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

const now = new Date("2026-11-28T10:00:00.000Z");

function adult(): Promise<Patient> {
  return patients.create(profile({ year: 1985, month: 6, day: 15 }));
}

function newLink(guardian: Patient, dependent: Patient | undefined, overrides: Partial<NewLink> = {}): NewLink {
  return {
    id: uuidV7(),
    guardianId: guardian.id,
    dependentId: dependent?.id,
    inviteeEmailHash: undefined,
    relationship: "parent",
    grants: ["view_records", "request_emergencies"],
    state: "active",
    consent: {
      method: "dependent_accepted",
      actor: { principal: `patients/${dependent?.id}`, role: "patient" },
      time: now,
    },
    endTime: undefined,
    createRequestId: undefined,
    now,
    ...overrides,
  };
}

/** Inserts in a transaction of its own. */
function insert(link: NewLink): Promise<boolean> {
  return links.fork().transactional((em) => links.insert(em, link));
}

describe("FamilyLinkRepository", () => {
  it("stores a link and reads it back with its dependent's profile", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = newLink(guardian, dependent, { endTime: new Date("2030-01-01T00:00:00Z") });
    expect(await insert(link)).toBe(true);
    const found = await links.find(guardian.id, link.id, undefined);
    expect(found?.link).toMatchObject({
      id: link.id,
      guardianId: guardian.id,
      dependentId: dependent.id,
      grants: ["view_records", "request_emergencies"],
      storedState: "active",
      endTime: new Date("2030-01-01T00:00:00Z"),
      version: 1,
      createTime: now,
      dependent: { id: dependent.id, displayName: "Meera Iyer", birthDate: "1985-06-15" },
      consent: { method: "dependent_accepted", time: now },
    });
    expect(await links.find(randomUUID(), link.id, undefined)).toBeUndefined();
    expect(await links.find(guardian.id, "not-a-uuid", undefined)).toBeUndefined();
  });

  it("skips a second insert with the same request id", async () => {
    const [guardian, dependent, other] = [await adult(), await adult(), await adult()];
    const requestId = randomUUID();
    expect(await insert(newLink(guardian, dependent, { createRequestId: requestId }))).toBe(true);
    expect(await insert(newLink(guardian, other, { createRequestId: requestId }))).toBe(false);
    expect((await links.findByRequestId(requestId))?.dependentId).toBe(dependent.id);
  });

  it("keeps one live link per pair, and frees the pair once the link has ended", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const first = newLink(guardian, dependent);
    await insert(first);
    await expect(
      insert(newLink(guardian, dependent, { state: "pending_consent", consent: undefined })),
    ).rejects.toMatchObject({
      reason: "FAMILY_LINK_ALREADY_EXISTS",
    });
    await links.fork().transactional((em) => links.update(em, first.id, 1, { state: "revoked" }, now));
    expect(await insert(newLink(guardian, dependent))).toBe(true);
  });

  it("is guarded by the database: no self links, no unknown grants, no active link without consent", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    await expect(insert(newLink(guardian, guardian))).rejects.toThrow(/family_links_not_self_check/);
    await expect(insert(newLink(guardian, dependent, { grants: ["fly_planes" as never] }))).rejects.toThrow(
      /family_links_grants_check/,
    );
    await expect(insert(newLink(guardian, dependent, { grants: [] }))).rejects.toThrow(
      /family_links_grants_not_empty_check/,
    );
    await expect(insert(newLink(guardian, dependent, { consent: undefined }))).rejects.toThrow(
      /family_links_active_consent_check/,
    );
  });

  it("applies an update only at the expected version", async () => {
    const [guardian, dependent] = [await adult(), await adult()];
    const link = newLink(guardian, dependent);
    await insert(link);
    const update = (version: number) =>
      links.fork().transactional((em) => links.update(em, link.id, version, { grants: ["pay_bills"] }, now));
    expect(await update(1)).toBe(true);
    expect(await update(1)).toBe(false);
    expect((await links.find(guardian.id, link.id, undefined))?.link).toMatchObject({
      grants: ["pay_bills"],
      version: 2,
    });
  });

  it("filters by the state a link reads as, not the state it has stored", async () => {
    const guardian = await adult();
    const at = (state: LinkState, extra: Partial<NewLink> = {}) =>
      adult().then(async (dependent) => {
        const link = newLink(guardian, dependent, { state, ...extra });
        await insert(link);
        return link.id;
      });
    const active = await at("active");
    const ended = await at("active", { endTime: new Date("2026-11-01T00:00:00Z") });
    const pending = await at("pending_consent", { consent: undefined });
    const lapsed = await at("pending_consent", { consent: undefined, now: new Date("2026-10-01T00:00:00Z") });
    const revoked = await at("revoked");
    const page = (states: LinkState[]) =>
      links
        .list({
          patientId: guardian.id,
          side: "guardian",
          states,
          now,
          lapsedBefore: new Date(now.getTime() - 30 * 86_400_000),
          pageSize: 100,
          afterId: undefined,
        })
        .then((result) => result.links.map((link) => link.id).sort());
    expect(await page(["active"])).toEqual([active]);
    expect(await page(["expired"])).toEqual([ended, lapsed].sort());
    expect(await page(["pending_consent", "revoked"])).toEqual([pending, revoked].sort());
    expect(await page([])).toHaveLength(5);
  });

  it("stores EXPIRED on a pair's link that reads as expired, and only on that", async () => {
    const [guardian, dependent, other] = [await adult(), await adult(), await adult()];
    const ended = newLink(guardian, dependent, { endTime: new Date("2026-11-01T00:00:00Z") });
    const current = newLink(guardian, other);
    await insert(ended);
    await insert(current);
    const lapsedBefore = new Date(now.getTime() - 30 * 86_400_000);
    const expire = (dependentId: string) =>
      links.fork().transactional((em) => links.expireStale(em, guardian.id, dependentId, now, lapsedBefore));
    expect(await expire(dependent.id)).toEqual([ended.id]);
    expect(await expire(other.id)).toEqual([]);
    expect((await links.find(guardian.id, ended.id, undefined))?.link.storedState).toBe("expired");
  });

  it("finds an invitee by their stored email's blind index", async () => {
    const [guardian, invitee, stranger] = [await adult(), await adult(), await adult()];
    const link = newLink(guardian, undefined, {
      state: "pending_consent",
      consent: undefined,
      inviteeEmailHash: patients.emailIndexOf(invitee.contact.email.toUpperCase()),
    });
    await insert(link);
    expect((await links.find(guardian.id, link.id, invitee.id))?.callerIsInvitee).toBe(true);
    expect((await links.find(guardian.id, link.id, stranger.id))?.callerIsInvitee).toBe(false);
  });
});

describe("FamilyAccess.grantsFor", () => {
  it("answers from the ACTIVE, unexpired link of the pair, and nothing otherwise", async () => {
    const clock = new ManualClock("2026-11-28T10:00:00.000Z");
    const access = new FamilyAccess(orm, clock);
    const [guardian, dependent, pending] = [await adult(), await adult(), await adult()];
    await insert(newLink(guardian, dependent, { endTime: new Date("2027-01-01T00:00:00Z") }));
    await insert(newLink(guardian, pending, { state: "pending_consent", consent: undefined }));
    const expected = new Set([FamilyGrant.VIEW_RECORDS, FamilyGrant.REQUEST_EMERGENCIES]);
    expect(await access.grantsFor(guardian.id, dependent.id)).toEqual(expected);
    expect(await access.grantsFor(dependent.id, guardian.id)).toEqual(new Set());
    expect(await access.grantsFor(guardian.id, pending.id)).toEqual(new Set());
    expect(await access.grantsFor(guardian.id, "not-a-uuid")).toEqual(new Set());
    clock.set("2027-01-01T00:00:00.000Z");
    expect(await access.grantsFor(guardian.id, dependent.id)).toEqual(new Set());
  });

  it("grants nothing once the dependent's profile is deleted", async () => {
    const access = new FamilyAccess(orm, new ManualClock("2026-11-28T10:00:00.000Z"));
    const [guardian, dependent] = [await adult(), await adult()];
    await insert(newLink(guardian, dependent));
    await patients.delete(dependent.id);
    expect(await access.grantsFor(guardian.id, dependent.id)).toEqual(new Set());
  });

  it("answers concurrent lookups with one query per batch", async () => {
    const guardian = await adult();
    const dependents = await Promise.all(Array.from({ length: 6 }, () => adult()));
    for (const dependent of dependents) await insert(newLink(guardian, dependent));
    let forks = 0;
    const access = new FamilyAccess((): EntityManager => {
      forks++;
      return orm.em.fork();
    }, new ManualClock("2026-11-28T10:00:00.000Z"));
    const stranger = randomUUID();
    const results = await Promise.all([
      ...dependents.map((dependent) => access.grantsFor(guardian.id, dependent.id)),
      access.grantsFor(guardian.id, stranger),
    ]);
    expect(forks).toBe(1);
    expect(results.slice(0, 6).every((grants) => grants.has(FamilyGrant.VIEW_RECORDS))).toBe(true);
    expect(results[6]).toEqual(new Set());
  });
});
