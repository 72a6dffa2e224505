import { defineEntity, p, type TriggerDef } from "@mikro-orm/core";

/**
 * Refuses UPDATE and DELETE of a row, whoever asks (the migration adds the TRUNCATE
 * twin, which MikroORM cannot introspect, and makes both `enable always`).
 */
function appendOnlyTrigger(): TriggerDef {
  return {
    name: "append_only",
    timing: "before",
    events: ["update", "delete"],
    forEach: "row",
    body: "raise exception '% is append-only: % refused', tg_table_name, tg_op;",
  };
}

/**
 * The tamper-evident audit log (RQ-PT004). The schema lives here and in
 * Migration20261128130000_create_audit_log (test/db/schema-drift.test.ts keeps them
 * in step, row-level triggers included); what MikroORM cannot see lives only in the
 * migration: the TRUNCATE triggers, `enable always`, and the grants of `patient_service_app`.
 * Rows are read and written with hand-written SQL (audit-log.ts, audit-verifier.ts),
 * never through the unit of work.
 *
 * - `sequence` is the entry's position in the chain, 1, 2, 3… without gaps; the writer
 *   assigns it under the lock of `audit_chain_head`, so it is not a serial.
 * - `event_time` is `timestamptz(6)`: the hash covers the time at microseconds, and
 *   the column must hold exactly what was hashed.
 * - `actor_role`, `action`, `outcome` are the lower-case short names of the proto enums
 *   (`doctor`, `read`, `denied`), readable in SQL and stable (buf breaking guards them).
 * - `prev_hash` and `hash` are raw SHA-256 digests (32 bytes); audit-chain.ts defines them.
 */
export const AuditLogEntity = defineEntity({
  name: "AuditLogEntry",
  tableName: "audit_log",
  properties: {
    sequence: p.bigint("string").primary().autoincrement(false),
    eventTime: p.datetime(6),
    /** `patients/…`, `doctors/…`, `services/…`; empty for anonymous callers and the system. */
    actor: p.text(),
    actorRole: p.text(),
    subjectPatientId: p.uuid().nullable(),
    proxy: p.boolean(),
    action: p.text(),
    resource: p.text(),
    outcome: p.text(),
    rpc: p.text(),
    requestId: p.text(),
    clientAddress: p.text(),
    reason: p.text(),
    prevHash: p.blob().check("octet_length(prev_hash) = 32"),
    hash: p.blob().check("octet_length(hash) = 32"),
  },
  indexes: [
    // A patient's access view (ListAccessEvents): their entries, newest first.
    {
      name: "audit_log_subject_sequence_idx",
      columns: [{ name: "subject_patient_id" }, { name: "sequence", sort: "desc" }],
    },
  ],
  triggers: [appendOnlyTrigger()],
});

/**
 * The newest entry of the chain, in one row (`id` = 1): writers lock it
 * (`select … for update`) to append, which serialises appends across processes.
 * Sequence 0 with 32 zero bytes is the empty chain.
 */
export const AuditChainHeadEntity = defineEntity({
  name: "AuditChainHead",
  tableName: "audit_chain_head",
  properties: {
    id: p.smallint().primary().autoincrement(false).check("id = 1"),
    sequence: p.bigint("string"),
    hash: p.blob().check("octet_length(hash) = 32"),
  },
  triggers: [
    {
      name: "forward_only",
      timing: "before",
      events: ["update", "delete"],
      forEach: "row",
      body:
        "if tg_op <> 'UPDATE' then raise exception 'audit_chain_head: % refused', tg_op; end if; " +
        "if new.sequence < old.sequence then raise exception 'audit_chain_head may only move forward'; end if; " +
        "return new;",
    },
  ],
});

/**
 * Signed checkpoints of the chain head (audit-checkpointer.ts): an Ed25519 signature
 * over {sequence, hash, signed_at}. A cut tail shows because the chain no longer
 * reaches the newest checkpoint; one checkpoint per head position.
 */
export const AuditCheckpointEntity = defineEntity({
  name: "AuditCheckpoint",
  tableName: "audit_checkpoints",
  properties: {
    sequence: p.bigint("string").primary().autoincrement(false),
    hash: p.blob().check("octet_length(hash) = 32"),
    signedAt: p.datetime(6),
    keyId: p.text(),
    signature: p.blob(),
  },
  triggers: [appendOnlyTrigger()],
});

/** The audit log's entities, for src/db/entities.ts. */
export const auditEntities = [AuditLogEntity, AuditChainHeadEntity, AuditCheckpointEntity] as const;
