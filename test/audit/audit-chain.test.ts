import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole, ActorRoleSchema } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  type AuditEntryFields,
  canonicalBytes,
  canonicalTail,
  entryHash,
  genesisHash,
  isoMicros,
  storableText,
} from "../../src/audit/audit-chain.ts";
import { chainedRows } from "../../src/audit/audit-batch-writer.ts";
import { auditFieldsOf, enumFromStored, storedName } from "../../src/audit/audit-fields.ts";
import { draft } from "./audit-fixtures.ts";

const time = new Date("2026-11-28T10:17:22.780Z");
const fields: AuditEntryFields = auditFieldsOf(
  draft({ subjectPatientId: "0190f3c4-0000-7000-8000-000000000001", requestId: "r-1" }),
  time,
);

describe("the canonical encoding of an audit entry (RQ-PT004)", () => {
  it("is a JSON array of the fields in a fixed order, with the sequence as a decimal string", () => {
    const decoded = JSON.parse(canonicalBytes(42n, fields).toString("utf8")) as unknown[];
    expect(decoded).toEqual([
      "audit.v1",
      "42",
      "2026-11-28T10:17:22.780000Z",
      fields.actor,
      "doctor",
      "0190f3c4-0000-7000-8000-000000000001",
      false,
      "read",
      "patients/0190f3c4-0000-7000-8000-000000000001",
      "success",
      "/telemed.patient.v1.PatientService/GetPatient",
      "r-1",
      "127.0.0.1",
      "",
    ]);
  });

  it("tells apart field contents that would concatenate to the same text", () => {
    const a = { ...fields, actor: "patients/a", resource: "bc" };
    const b = { ...fields, actor: "patients/ab", resource: "c" };
    expect(entryHash(genesisHash, 1n, a)).not.toBe(entryHash(genesisHash, 1n, b));
    expect(entryHash(genesisHash, 1n, { ...fields, subjectPatientId: null })).not.toBe(
      entryHash(genesisHash, 1n, fields),
    );
  });

  it("hashes SHA-256(prev_hash || canonical bytes), so a different position or predecessor changes the hash", () => {
    const expected = createHash("sha256").update(Buffer.alloc(32)).update(canonicalBytes(1n, fields)).digest("hex");
    expect(entryHash(genesisHash, 1n, fields)).toBe(expected);
    expect(entryHash(genesisHash, 2n, fields)).not.toBe(expected);
    expect(entryHash("ff".repeat(32), 1n, fields)).not.toBe(expected);
  });

  it("chains entries after a head: consecutive sequences, each linked to the previous hash", () => {
    const tail = canonicalTail(fields);
    const { rows, last } = chainedRows({ sequence: 7n, hash: "ab".repeat(32) }, [tail, tail, tail]);
    // Each row: the canonical encoding the hash covers, then prev_hash and hash.
    const chained = (JSON.parse(rows) as string[][]).map((row) => ({
      sequence: BigInt(row[1] as string),
      prevHash: row[14],
      hash: row[15],
    }));
    expect(chained.map((entry) => entry.sequence)).toEqual([8n, 9n, 10n]);
    expect(chained[0]?.prevHash).toBe("ab".repeat(32));
    expect(chained[0]?.hash).toBe(entryHash("ab".repeat(32), 8n, fields));
    expect(chained[1]?.prevHash).toBe(chained[0]?.hash);
    expect(chained[2]?.hash).toBe(entryHash(chained[1]?.hash ?? "", 10n, fields));
    expect(last).toEqual({ sequence: 10n, hash: chained[2]?.hash });
  });

  it("writes times in UTC with microseconds, the precision of timestamptz(6)", () => {
    expect(isoMicros(new Date(0))).toBe("1970-01-01T00:00:00.000000Z");
    expect(() => isoMicros(new Date(Number.NaN))).toThrow(RangeError);
  });

  it("makes text storable: NUL and lone surrogates become U+FFFD, everything else is kept", () => {
    expect(storableText("a\u0000b\ud800c")).toBe("a\uFFFDb\uFFFDc");
    expect(storableText("O'Brien \\ 😀 ? ??")).toBe("O'Brien \\ 😀 ? ??");
  });
});

describe("audit fields of a draft", () => {
  it("stores enums as their lower-case short names and reads them back", () => {
    expect(storedName(ActorRoleSchema, ActorRole.PARAMEDIC)).toBe("paramedic");
    expect(enumFromStored(ActorRoleSchema, "paramedic")).toBe(ActorRole.PARAMEDIC);
    expect(enumFromStored(ActorRoleSchema, "nobody")).toBe(ActorRole.UNSPECIFIED);
    const denied = auditFieldsOf(draft({ action: AuditAction.DELETE, outcome: AuditOutcome.DENIED }), time);
    expect([denied.action, denied.outcome]).toEqual(["delete", "denied"]);
  });

  it("lowercases the subject id and refuses one that is not a UUID", () => {
    const upper = auditFieldsOf(draft({ subjectPatientId: "0190F3C4-0000-7000-8000-00000000000A" }), time);
    expect(upper.subjectPatientId).toBe("0190f3c4-0000-7000-8000-00000000000a");
    expect(auditFieldsOf(draft({ subjectPatientId: undefined }), time).subjectPatientId).toBeNull();
    expect(() => auditFieldsOf(draft({ subjectPatientId: "p1" }), time)).toThrow(TypeError);
  });
});
