import { generateKeyPairSync, randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction, AuditChainVerification_Break, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import {
  ListAccessEventsRequestSchema,
  type ListAccessEventsResponse,
  type VerifyAuditChainResponse,
  VerifyAuditChainRequestSchema,
} from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { AuditCheckpointer, auditKeyId } from "../../src/audit/audit-checkpointer.ts";
import { auditService } from "../../src/audit/audit-handlers.ts";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { createOrm, type Orm } from "../../src/db/orm.ts";
import { DomainError } from "../../src/shared/domain-errors.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { draft } from "./audit-fixtures.ts";

const signer = generateKeyPairSync("ed25519");
const context = {} as HandlerContext;
let db: TestDatabase;
let orm: Orm;
let service: ReturnType<typeof auditService>;

const patient = randomUUID();
const guardian = randomUUID();
const doctor = `doctors/${randomUUID()}`;
const admin = `admins/${randomUUID()}`;
const t0 = Date.parse("2026-11-01T09:00:00.000Z");
const minute = 60_000;

/** Seeded history of `patient`, oldest first; `at` is minutes after t0. */
const history = [
  { at: 0, actor: doctor, actorRole: ActorRole.DOCTOR, action: AuditAction.READ },
  { at: 1, actor: `patients/${patient}`, actorRole: ActorRole.PATIENT, action: AuditAction.UPDATE },
  { at: 2, actor: `patients/${guardian}`, actorRole: ActorRole.GUARDIAN, action: AuditAction.READ, proxy: true },
  { at: 3, actor: admin, actorRole: ActorRole.ADMIN, action: AuditAction.UPDATE },
  { at: 4, actor: doctor, actorRole: ActorRole.DOCTOR, action: AuditAction.READ, outcome: AuditOutcome.DENIED },
  { at: 5, actor: `patients/${patient}`, actorRole: ActorRole.PATIENT, action: AuditAction.READ },
  { at: 6, actor: doctor, actorRole: ActorRole.DOCTOR, action: AuditAction.DOWNLOAD },
];

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ url: db.url, poolMax: 2 });
  let now = new Date(t0);
  const log = new AuditLog(orm, { now: () => now });
  for (const entry of history) {
    now = new Date(t0 + entry.at * minute);
    await log.record(
      draft({
        subjectPatientId: patient,
        resource: `patients/${patient}`,
        outcome: AuditOutcome.SUCCESS,
        proxy: false,
        ...entry,
      }),
    );
    // Someone else's history in between: never listed for `patient`.
    await log.record(draft({ actor: doctor }));
  }
  await log.close();
  await new AuditCheckpointer(orm, { signingKey: signer.privateKey, intervalMs: 0 }).close();
  service = auditService({ orm, publicKeys: new Map([[auditKeyId(signer.publicKey), signer.publicKey]]) });
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

async function list(
  fields: MessageInitShape<typeof ListAccessEventsRequestSchema> = {},
): Promise<ListAccessEventsResponse> {
  const request = create(ListAccessEventsRequestSchema, { parent: `patients/${patient}`, ...fields });
  return (await service.listAccessEvents?.(request, context)) as ListAccessEventsResponse;
}

/** Minutes after t0 of the listed events. */
function minutes(response: ListAccessEventsResponse): number[] {
  return response.accessEvents.map((event) => (timestampDate(event.eventTime!).getTime() - t0) / minute);
}

describe("ListAccessEvents: who accessed my records (RQ-PT004)", () => {
  it("lists others' accesses to the patient, newest first, with who, how, what and when", async () => {
    const response = await list();
    expect(minutes(response)).toEqual([6, 4, 3, 2, 0]);
    const guardianRead = response.accessEvents[3];
    expect(guardianRead).toMatchObject({
      actor: { principal: `patients/${guardian}`, role: ActorRole.GUARDIAN },
      proxy: true,
      action: AuditAction.READ,
      resource: `patients/${patient}`,
      outcome: AuditOutcome.SUCCESS,
    });
    expect(guardianRead?.name).toBe(`patients/${patient}/accessEvents/${guardianRead?.sequence}`);
    expect(response.accessEvents[1]).toMatchObject({ outcome: AuditOutcome.DENIED });
    expect(response.nextPageToken).toBe("");
  });

  it("includes the patient's own actions on request", async () => {
    expect(minutes(await list({ includeOwn: true }))).toEqual([6, 5, 4, 3, 2, 1, 0]);
  });

  it("filters by actor role and by time range (start inclusive, end exclusive)", async () => {
    expect(minutes(await list({ actorRoles: [ActorRole.DOCTOR] }))).toEqual([6, 4, 0]);
    expect(minutes(await list({ actorRoles: [ActorRole.ADMIN, ActorRole.GUARDIAN] }))).toEqual([3, 2]);
    const window = {
      startTime: timestampFromDate(new Date(t0 + 2 * minute)),
      endTime: timestampFromDate(new Date(t0 + 6 * minute)),
    };
    expect(minutes(await list(window))).toEqual([4, 3, 2]);
  });

  it("pages with opaque tokens bound to the filters", async () => {
    const seen: number[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await list({ includeOwn: true, pageSize: 3, pageToken });
      seen.push(...minutes(page));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "" && pages < 10);
    expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0]);
    expect(pages).toBe(3);
    const first = await list({ includeOwn: true, pageSize: 3 });
    await expect(list({ includeOwn: false, pageSize: 3, pageToken: first.nextPageToken })).rejects.toThrow(DomainError);
    await expect(list({ pageToken: "bm90IGEgdG9rZW4" })).rejects.toThrow(DomainError);
  });

  it("answers an empty list for a patient without entries or an id that is not a UUID", async () => {
    expect((await list({ parent: `patients/${randomUUID()}` })).accessEvents).toEqual([]);
    expect((await list({ parent: "patients/p1" })).accessEvents).toEqual([]);
  });
});

describe("VerifyAuditChain", () => {
  it("reports an intact chain with its head and newest checkpoint", async () => {
    const response = (await service.verifyAuditChain?.(
      create(VerifyAuditChainRequestSchema, {}),
      context,
    )) as VerifyAuditChainResponse;
    expect(response.verification).toMatchObject({
      intact: true,
      entriesChecked: BigInt(history.length * 2),
      headSequence: BigInt(history.length * 2),
      firstBrokenSequence: 0n,
      breakKind: AuditChainVerification_Break.UNSPECIFIED,
      checkpointSequence: BigInt(history.length * 2),
    });
    expect(response.verification?.headHash).toMatch(/^[0-9a-f]{64}$/);
    expect(response.verification?.checkpointTime).toBeDefined();
    expect(response.verification?.verifyTime).toBeDefined();
  });

  it("checks only the range asked for", async () => {
    const response = (await service.verifyAuditChain?.(
      create(VerifyAuditChainRequestSchema, { startSequence: 5n, maxEntries: 3n }),
      context,
    )) as VerifyAuditChainResponse;
    expect(response.verification).toMatchObject({ intact: true, entriesChecked: 3n });
  });
});
