import type { EntityManager } from "@mikro-orm/postgresql";
import { isoMicrosSql } from "./audit-chain.ts";

/** Which of a patient's audit entries to list (ListAccessEvents). */
export interface AccessEventQuery {
  /** The patient, a UUID. */
  readonly patientId: string;
  /** At or after this time. */
  readonly startTime?: Date | undefined;
  /** Before this time. */
  readonly endTime?: Date | undefined;
  /** Stored role names (`doctor`, `admin`); all when empty. */
  readonly actorRoles: readonly string[];
  /** Also the patient's own actions (actor `patients/{patientId}`). */
  readonly includeOwn: boolean;
  readonly pageSize: number;
  /** Continue below this sequence (the previous page's last). */
  readonly beforeSequence?: bigint | undefined;
}

/** One entry of a patient's access view, as stored. */
export interface AccessEventRecord {
  readonly sequence: string;
  /** `isoMicros`, UTC. */
  readonly event_time: string;
  readonly actor: string;
  readonly actor_role: string;
  readonly proxy: boolean;
  readonly action: string;
  readonly resource: string;
  readonly outcome: string;
  readonly request_id: string;
}

/** A page of access events, newest first. */
export interface AccessEventPage {
  readonly events: readonly AccessEventRecord[];
  /** Present when more follow: pass it as `beforeSequence`. */
  readonly nextBeforeSequence?: bigint;
}

/**
 * A patient's access view: the audit entries whose subject is the patient, newest
 * first by keyset on `sequence` (the index on `(subject_patient_id, sequence desc)`
 * serves it). Only what the contract's AccessEvent shows is read: never the client
 * address or the RPC.
 */
export async function listAccessEvents(em: EntityManager, query: AccessEventQuery): Promise<AccessEventPage> {
  const conditions = [`"subject_patient_id" = ?`];
  const params: (string | number | readonly string[])[] = [query.patientId];
  if (!query.includeOwn) {
    conditions.push(`"actor" <> ?`);
    params.push(`patients/${query.patientId}`);
  }
  if (query.startTime !== undefined) {
    conditions.push(`"event_time" >= cast(? as timestamptz)`);
    params.push(query.startTime.toISOString());
  }
  if (query.endTime !== undefined) {
    conditions.push(`"event_time" < cast(? as timestamptz)`);
    params.push(query.endTime.toISOString());
  }
  if (query.actorRoles.length > 0) {
    conditions.push(`"actor_role" in (?)`);
    params.push(query.actorRoles);
  }
  if (query.beforeSequence !== undefined) {
    conditions.push(`"sequence" < ?`);
    params.push(query.beforeSequence.toString());
  }
  params.push(query.pageSize + 1);
  // ORDER BY names the table's column: a bare "sequence" would be the text output column.
  const rows = await em.execute<AccessEventRecord[]>(
    `select "sequence"::text as "sequence", ${isoMicrosSql('"event_time"')} as "event_time", "actor", "actor_role", ` +
      `"proxy", "action", "resource", "outcome", "request_id" from "audit_log" ` +
      `where ${conditions.join(" and ")} order by "audit_log"."sequence" desc limit ?`,
    params,
    "all",
  );
  const events = rows.slice(0, query.pageSize);
  const last = events.at(-1);
  if (rows.length <= query.pageSize || last === undefined) return { events };
  return { events, nextBeforeSequence: BigInt(last.sequence) };
}
