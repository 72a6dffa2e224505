import { type KeyObject, verify } from "node:crypto";
import { IsolationLevel } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { AuditChainVerification_Break as Break } from "../../gen/telemed/patient/v1/audit_pb.js";
import { type Clock, systemClock } from "../shared/clock.ts";
import { type AuditEntryFields, checkpointMessage, entryHash, genesisHash, isoMicrosSql } from "./audit-chain.ts";

export { Break as AuditChainBreak };

/** What to check. */
export interface VerifyOptions {
  /** First sequence to check (1 when 0 or unset); the entry before it is trusted as the anchor. */
  readonly startSequence?: bigint | number;
  /** Check at most this many entries (all when 0 or unset). */
  readonly maxEntries?: bigint | number;
  /** Rows per query; 5000 by default. */
  readonly pageSize?: number;
  readonly clock?: Clock;
}

/** The fields of the contract's AuditChainVerification, as plain values. */
export interface AuditChainVerificationResult {
  readonly intact: boolean;
  readonly entriesChecked: bigint;
  readonly headSequence: bigint;
  /** Lowercase hex. */
  readonly headHash: string;
  /** 0 when intact. */
  readonly firstBrokenSequence: bigint;
  readonly breakKind: Break;
  /** 0 when there is no checkpoint. */
  readonly checkpointSequence: bigint;
  readonly checkpointTime: Date | undefined;
  readonly verifyTime: Date;
}

interface Finding {
  readonly sequence: bigint;
  readonly kind: Break;
}

interface HeadRow {
  readonly sequence: string;
  readonly hash: string;
  readonly cp_sequence: string | null;
  readonly cp_hash: string | null;
  readonly cp_signed_at: string | null;
  readonly cp_key_id: string | null;
  readonly cp_signature: string | null;
}

interface EntryRow {
  readonly sequence: string;
  readonly event_time: string;
  readonly actor: string;
  readonly actor_role: string;
  readonly subject_patient_id: string | null;
  readonly proxy: boolean;
  readonly action: string;
  readonly resource: string;
  readonly outcome: string;
  readonly rpc: string;
  readonly request_id: string;
  readonly client_address: string;
  readonly reason: string;
  readonly prev_hash: string;
  readonly hash: string;
}

const entryColumns =
  `"sequence"::text as "sequence", ${isoMicrosSql('"event_time"')} as "event_time", "actor", "actor_role", ` +
  `"subject_patient_id"::text as "subject_patient_id", "proxy", "action", "resource", "outcome", "rpc", ` +
  `"request_id", "client_address", "reason", encode("prev_hash", 'hex') as "prev_hash", encode("hash", 'hex') as "hash"`;

/**
 * Checks the audit chain (RQ-PT004) and reports the first broken sequence:
 *
 * - MISSING_ENTRY: a sequence number is absent (a deleted entry);
 * - HASH_MISMATCH: an entry's recomputed hash differs from the stored one (an edit),
 *   its `prev_hash` does not link to the entry before it, or the chain's hash at the
 *   newest checkpoint differs from the signed one (a rewritten chain);
 * - TRUNCATED: the chain ends before the newest checkpoint or before the head row's
 *   sequence, or the head row is behind either (a cut tail);
 * - CHECKPOINT_INVALID: the newest checkpoint's signature does not verify with the
 *   key its `key_id` names (or, for an id not in `publicKeys`, with none of them).
 *
 * Entries are read in pages by keyset on `sequence`, inside one read-only
 * REPEATABLE READ transaction (one snapshot, so concurrent appends are not mistaken for
 * a broken tail), which keeps memory flat on millions of rows. With `startSequence`
 * or `maxEntries` only that range is walked; the tail checks then apply only if the
 * walk reached the end. Pass an EntityManager outside a transaction (it is forked):
 * inside one, its snapshot is used as it is, and under READ COMMITTED entries appended
 * meanwhile would look like a head that fell behind.
 */
export async function verifyAuditChain(
  em: EntityManager,
  publicKeys: ReadonlyMap<string, KeyObject>,
  options: VerifyOptions = {},
): Promise<AuditChainVerificationResult> {
  const run = (tx: EntityManager) => verifyInSnapshot(tx, publicKeys, options);
  if (em.isInTransaction()) return run(em);
  return em.fork().transactional(run, { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true });
}

async function verifyInSnapshot(
  em: EntityManager,
  publicKeys: ReadonlyMap<string, KeyObject>,
  options: VerifyOptions,
): Promise<AuditChainVerificationResult> {
  const verifyTime = (options.clock ?? systemClock).now();
  const pageSize = Math.max(1, Math.trunc(options.pageSize ?? 5000));
  const head: HeadRow | undefined = await em.execute<HeadRow>(
    `select h."sequence"::text as "sequence", encode(h."hash", 'hex') as "hash", c."sequence"::text as "cp_sequence", ` +
      `encode(c."hash", 'hex') as "cp_hash", ${isoMicrosSql('c."signed_at"')} as "cp_signed_at", ` +
      `c."key_id" as "cp_key_id", encode(c."signature", 'hex') as "cp_signature" ` +
      `from "audit_chain_head" h left join lateral ` +
      `(select * from "audit_checkpoints" order by "sequence" desc limit 1) c on true where h."id" = 1`,
    [],
    "get",
  );
  if (head === undefined) throw new Error("audit_chain_head has no row: are the migrations applied?");
  const headSequence = BigInt(head.sequence);
  const checkpoint = head.cp_sequence === null ? undefined : { ...head, sequence: BigInt(head.cp_sequence) };
  const findings: Finding[] = [];

  if (checkpoint !== undefined && !checkpointSignatureValid(head, publicKeys)) {
    findings.push({ sequence: checkpoint.sequence, kind: Break.CHECKPOINT_INVALID });
  }
  if (checkpoint !== undefined && headSequence < checkpoint.sequence) {
    findings.push({ sequence: headSequence + 1n, kind: Break.TRUNCATED });
  }

  // The walk: `expected` is the next sequence, `prevHash` the hash it must link to.
  const start = BigInt(options.startSequence ?? 0) > 1n ? BigInt(options.startSequence ?? 0) : 1n;
  const limit = BigInt(options.maxEntries ?? 0) > 0n ? BigInt(options.maxEntries ?? 0) : undefined;
  let expected = start;
  let prevHash = genesisHash;
  let checked = 0n;
  let chainBreak: Finding | undefined;
  // Asked to start past the head: nothing to walk, and no tail to check.
  const pastHead = start - 1n > headSequence;
  let reachedEnd = pastHead;
  if (start > 1n && !pastHead) {
    const anchor: { hash: string } | undefined = await em.execute<{ hash: string }>(
      `select encode("hash", 'hex') as "hash" from "audit_log" where "sequence" = ?`,
      [(start - 1n).toString()],
      "get",
    );
    if (anchor === undefined) chainBreak = { sequence: start - 1n, kind: Break.MISSING_ENTRY };
    else prevHash = anchor.hash;
  }
  while (chainBreak === undefined && !reachedEnd) {
    const want = limit === undefined ? pageSize : Number(bigMin(BigInt(pageSize), limit - checked));
    if (want <= 0) break;
    // Qualified: a bare "sequence" in ORDER BY would name the text output column.
    const rows = await em.execute<EntryRow[]>(
      `select ${entryColumns} from "audit_log" where "sequence" >= ? order by "audit_log"."sequence" limit ?`,
      [expected.toString(), want],
      "all",
    );
    for (const row of rows) {
      checked++;
      chainBreak = checkEntry(row, expected, prevHash);
      if (chainBreak !== undefined) break;
      if (checkpoint !== undefined && checkpoint.sequence === expected && checkpoint.cp_hash !== row.hash) {
        chainBreak = { sequence: expected, kind: Break.HASH_MISMATCH };
        break;
      }
      prevHash = row.hash;
      expected++;
    }
    if (rows.length < want) reachedEnd = true;
  }
  if (chainBreak !== undefined) findings.push(chainBreak);

  const last = expected - 1n;
  if (chainBreak === undefined && reachedEnd && !pastHead) {
    if (last < headSequence) findings.push({ sequence: last + 1n, kind: Break.TRUNCATED });
    else if (last > headSequence) findings.push({ sequence: headSequence + 1n, kind: Break.TRUNCATED });
    else if (last >= 1n && prevHash !== head.hash) findings.push({ sequence: last, kind: Break.HASH_MISMATCH });
    if (checkpoint !== undefined && last < checkpoint.sequence) {
      findings.push({ sequence: last + 1n, kind: Break.TRUNCATED });
    }
  }

  const first = firstFinding(findings);
  return {
    intact: first === undefined,
    entriesChecked: checked,
    headSequence,
    headHash: head.hash,
    firstBrokenSequence: first?.sequence ?? 0n,
    breakKind: first?.kind ?? Break.UNSPECIFIED,
    checkpointSequence: checkpoint?.sequence ?? 0n,
    checkpointTime: head.cp_signed_at === null ? undefined : new Date(head.cp_signed_at),
    verifyTime,
  };
}

/** The break at `row`, if it is not the `expected` entry linked to `prevHash` with a hash that matches its content. */
function checkEntry(row: EntryRow, expected: bigint, prevHash: string): Finding | undefined {
  const sequence = BigInt(row.sequence);
  if (sequence !== expected) return { sequence: expected, kind: Break.MISSING_ENTRY };
  if (row.prev_hash !== prevHash) return { sequence, kind: Break.HASH_MISMATCH };
  const fields: AuditEntryFields = {
    eventTime: row.event_time,
    actor: row.actor,
    actorRole: row.actor_role,
    subjectPatientId: row.subject_patient_id,
    proxy: row.proxy,
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    rpc: row.rpc,
    requestId: row.request_id,
    clientAddress: row.client_address,
    reason: row.reason,
  };
  if (entryHash(row.prev_hash, sequence, fields) !== row.hash) return { sequence, kind: Break.HASH_MISMATCH };
  return undefined;
}

function checkpointSignatureValid(head: HeadRow, publicKeys: ReadonlyMap<string, KeyObject>): boolean {
  if (head.cp_sequence === null || head.cp_hash === null || head.cp_signed_at === null) return false;
  const message = checkpointMessage(BigInt(head.cp_sequence), head.cp_hash, head.cp_signed_at);
  const signature = Buffer.from(head.cp_signature ?? "", "hex");
  // The key id picks the key; a checkpoint whose id is not among the trusted keys may
  // still verify with one of them (an id chosen by configuration, not derived).
  const named = head.cp_key_id === null ? undefined : publicKeys.get(head.cp_key_id);
  const candidates = named === undefined ? [...publicKeys.values()] : [named];
  return candidates.some((key) => {
    try {
      return verify(null, message, key, signature);
    } catch {
      return false; // not an Ed25519 key, or a malformed signature
    }
  });
}

/** The lowest sequence wins; at the same sequence, the order findings were made in. */
function firstFinding(findings: readonly Finding[]): Finding | undefined {
  let first: Finding | undefined;
  for (const finding of findings) {
    if (first === undefined || finding.sequence < first.sequence) first = finding;
  }
  return first;
}

function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
