import { hash } from "node:crypto";

/**
 * The hash chain of the audit log (RQ-PT004), without I/O: how an entry is encoded
 * and hashed. Writers (audit-log.ts) and the verifier (audit-verifier.ts) share it, so
 * what one computes the other recomputes from the stored row.
 *
 *     hash(n) = SHA-256(hash(n-1) || canonical(entry n)),   hash(0) = 32 zero bytes
 *
 * `canonical` is the UTF-8 of a JSON array of the fields in a fixed order (JSON makes
 * the boundaries between fields unambiguous; the array needs no key ordering):
 *
 *     ["audit.v1", "<sequence>", "<event time, UTC, microseconds>", actor, actor_role,
 *      subject_patient_id | null, proxy, action, resource, outcome, rpc, request_id,
 *      client_address, reason]
 *
 * The sequence is a decimal string (a bigint), the time `2026-11-28T10:17:22.780000Z`
 * (PostgreSQL's timestamptz(6) holds exactly that), enums their lower-case short names
 * as stored. A changed field, a moved entry or a re-linked entry changes the hash.
 */

/** 32 zero bytes, hex: the `prev_hash` of entry 1 and the hash of the empty chain. */
export const genesisHash = "0".repeat(64);

/** Tags the encoding, so a future change of fields can be told apart from tampering. */
const encodingVersion = "audit.v1";

/** An entry as stored: enums as names, ids lowercase, strings storable (audit-log.ts `auditFieldsOf`). */
export interface AuditEntryFields {
  readonly eventTime: string;
  readonly actor: string;
  readonly actorRole: string;
  readonly subjectPatientId: string | null;
  readonly proxy: boolean;
  readonly action: string;
  readonly resource: string;
  readonly outcome: string;
  readonly rpc: string;
  readonly requestId: string;
  readonly clientAddress: string;
  readonly reason: string;
}

/** An entry's fields after its sequence, in the one order both the hash and the table use. */
function fieldValues(entry: AuditEntryFields): (string | boolean | null)[] {
  return [
    entry.eventTime,
    entry.actor,
    entry.actorRole,
    entry.subjectPatientId,
    entry.proxy,
    entry.action,
    entry.resource,
    entry.outcome,
    entry.rpc,
    entry.requestId,
    entry.clientAddress,
    entry.reason,
  ];
}

/**
 * The canonical encoding without its version and sequence: the JSON array of the
 * entry's other fields. It does not depend on the entry's place in the chain, so a
 * writer computes it once, when the entry is recorded, and `canonicalText` completes
 * it when the batch learns its sequences.
 */
export function canonicalTail(entry: AuditEntryFields): string {
  return JSON.stringify(fieldValues(entry));
}

const canonicalPrefix = `[${JSON.stringify(encodingVersion)},"`;

/**
 * The canonical encoding (as text) of the entry at `sequence` whose tail is `tail`:
 * exactly `JSON.stringify([version, "<sequence>", ...fields])`, since JSON.stringify
 * writes arrays without spaces and a decimal sequence needs no escaping.
 */
export function canonicalText(sequence: bigint, tail: string): string {
  return `${canonicalPrefix}${sequence}",${tail.slice(1)}`;
}

/** The bytes the hash covers for the entry at `sequence`. */
export function canonicalBytes(sequence: bigint, entry: AuditEntryFields): Buffer {
  return Buffer.from(canonicalText(sequence, canonicalTail(entry)), "utf8");
}

/** SHA-256(prev_hash || canonical(entry)), lowercase hex. */
export function entryHash(prevHash: string, sequence: bigint, entry: AuditEntryFields): string {
  return linkHash(prevHash, canonicalText(sequence, canonicalTail(entry)));
}

/**
 * SHA-256(prev_hash || canonical), lowercase hex, from the canonical text: one buffer
 * and a one-shot hash. A `prevHash` that is not clean hex (a tampered row) is decoded
 * as Buffer.from(prevHash, "hex") decodes it, so the verifier reports a mismatch.
 */
export function linkHash(prevHash: string, canonical: string): string {
  const canonicalLength = Buffer.byteLength(canonical, "utf8");
  const bytes = Buffer.allocUnsafe((prevHash.length >>> 1) + canonicalLength);
  const prevLength = bytes.write(prevHash, 0, "hex");
  bytes.write(canonical, prevLength, "utf8");
  return hash("sha256", bytes.subarray(0, prevLength + canonicalLength), "hex");
}

/** `2026-11-28T10:17:22.780000Z`: ISO 8601 in UTC with microseconds, as the chain encodes times. */
export function isoMicros(date: Date): string {
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 1 || year > 9999) throw new RangeError("audit entry: event time out of range");
  return `${date.toISOString().slice(0, 23)}000Z`;
}

/**
 * The SQL expression that renders a timestamptz column the way `isoMicros` does,
 * whatever the session's time zone. `column` is a trusted identifier.
 */
export function isoMicrosSql(column: string): string {
  return `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/**
 * Text as PostgreSQL stores it and reads it back unchanged: lone surrogates and NUL
 * (which `text` cannot hold) become U+FFFD, so the row read back encodes to the same
 * bytes as what was hashed.
 */
export function storableText(text: string): string {
  return text.toWellFormed().replaceAll("\u0000", "\uFFFD");
}

/**
 * The bytes a checkpoint's Ed25519 signature covers: the head's sequence and hash and
 * the signing time, tagged so no other signature of the same key can pass for one.
 */
export function checkpointMessage(sequence: bigint, hash: string, signedAt: string): Buffer {
  return Buffer.from(JSON.stringify(["audit-checkpoint.v1", sequence.toString(), hash, signedAt]), "utf8");
}
