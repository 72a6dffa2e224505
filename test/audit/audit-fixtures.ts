import { randomUUID } from "node:crypto";
import pg from "pg";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import type { AuditEntryDraft } from "../../src/audit/audit-entry.ts";

/** A read of a patient's profile by a doctor; override what a test is about. */
export function draft(overrides: Partial<AuditEntryDraft> = {}): AuditEntryDraft {
  const patientId = overrides.subjectPatientId ?? randomUUID();
  return {
    actor: `doctors/${randomUUID()}`,
    actorRole: ActorRole.DOCTOR,
    subjectPatientId: patientId,
    proxy: false,
    action: AuditAction.READ,
    resource: `patients/${patientId}`,
    outcome: AuditOutcome.SUCCESS,
    rpc: "/telemed.patient.v1.PatientService/GetPatient",
    requestId: randomUUID(),
    clientAddress: "127.0.0.1",
    reason: "",
    ...overrides,
  };
}

/** Runs `work` on a connection of its own to `url` (a superuser's, in these tests) and closes it. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Tampers with the audit tables the way only a superuser or the tables' owner can:
 * the append-only triggers are switched off (DDL), the statements run, and they are switched
 * back on as they were (`enable always`), all in one transaction.
 */
export async function tamper(url: string, ...statements: string[]): Promise<void> {
  await withClient(url, async (client) => {
    await client.query("begin");
    await client.query(`alter table "audit_log" disable trigger "append_only"`);
    await client.query(`alter table "audit_checkpoints" disable trigger "append_only"`);
    await client.query(`alter table "audit_chain_head" disable trigger "forward_only"`);
    for (const sql of statements) await client.query(sql);
    await client.query(`alter table "audit_log" enable always trigger "append_only"`);
    await client.query(`alter table "audit_checkpoints" enable always trigger "append_only"`);
    await client.query(`alter table "audit_chain_head" enable always trigger "forward_only"`);
    await client.query("commit");
  });
}

/** The sequences in `audit_log`, in order. */
export async function sequences(url: string): Promise<number[]> {
  return withClient(url, async (client) => {
    const result = await client.query<{ sequence: string }>(`select "sequence" from "audit_log" order by "sequence"`);
    return result.rows.map((row) => Number(row.sequence));
  });
}
