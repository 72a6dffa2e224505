import type { EntityManager } from "@mikro-orm/postgresql";
import type { EmergencyState, Priority } from "./emergency.ts";
import type { EmergencyRecord, StoredAssignment, TimelineEntry } from "./emergency-record.ts";
import type { EmergencySealer } from "./emergency-sealing.ts";

type Row = Record<string, unknown>;

/** The SQL of the emergencies tables, as `emergencySqlWith` makes it. */
export type EmergencySql = ReturnType<typeof emergencySqlWith>;

/**
 * SQL of the emergencies tables. Every function takes the EntityManager of the
 * caller's transaction (on the emergencies' own connection pool), so the use cases
 * decide what commits together. The description, location, callback phone and cancel
 * reason are sealed on the way in and opened on the way out (`sealer`,
 * emergency-sealing.ts): the records the use cases see are in clear, the rows never.
 */
export function emergencySqlWith(sealer: EmergencySealer) {
  const toRecord = (row: Row) => recordOf(row, sealer);
  return {
    /** Serialises creates of one patient, so two repeats cannot both open an emergency. */
    async lockPatient(em: EntityManager, patientId: string): Promise<void> {
      await em.execute(`select pg_advisory_xact_lock(hashtextextended(?, 5))`, [`emergency:${patientId}`], "all");
    },

    async findRequest(
      em: EntityManager,
      patientId: string,
      requestId: string,
    ): Promise<{ emergencyId: string; merged: boolean } | undefined> {
      const rows = await em.execute<Row[]>(
        `select "emergency_id", "merged" from "emergency_requests" where "patient_id" = ? and "request_id" = ?`,
        [patientId, requestId],
        "all",
      );
      const row = rows[0];
      return row === undefined ? undefined : { emergencyId: row.emergency_id as string, merged: row.merged as boolean };
    },

    async insertRequest(
      em: EntityManager,
      patientId: string,
      requestId: string,
      emergencyId: string,
      merged: boolean,
      now: Date,
    ) {
      await em.execute(
        `insert into "emergency_requests" ("patient_id", "request_id", "emergency_id", "merged", "created_at") values (?, ?, ?, ?, ?)`,
        [patientId, requestId, emergencyId, merged, now],
        "run",
      );
    },

    /** The patient's newest emergency that has not ended, locked. */
    async findOpenForUpdate(em: EntityManager, patientId: string): Promise<EmergencyRecord | undefined> {
      const rows = await em.execute<Row[]>(
        `select * from "emergencies" where "patient_id" = ? and "state" not in ('closed', 'cancelled') order by "id" desc limit 1 for update`,
        [patientId],
        "all",
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },

    async insert(em: EntityManager, record: EmergencyRecord): Promise<void> {
      const sealed = sealer.seal(record.id, record);
      await em.execute(
        `insert into "emergencies" ("id", "patient_id", "kind", "severity", "priority", "details_sealed", "data_key_wrapped", "data_key_id", "state", "last_source_sequence", "timeline_length", "assignment", "requested_by", "requested_by_role", "merged_request_count", "version", "created_at", "updated_at", "dispatched_at") values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, ?, ?, ?, ?)`,
        [
          record.id,
          record.patientId,
          record.kind,
          record.severity,
          record.priority,
          sealed.detailsSealed,
          sealed.dataKeyWrapped,
          sealed.dataKeyId,
          record.state,
          record.lastSourceSequence,
          record.timelineLength,
          record.requestedBy,
          record.requestedByRole,
          record.mergedRequestCount,
          record.version,
          record.createdAt,
          record.updatedAt,
          record.dispatchedAt,
        ],
        "run",
      );
    },

    async get(
      em: EntityManager,
      id: string,
      options: { forUpdate?: boolean } = {},
    ): Promise<EmergencyRecord | undefined> {
      const rows = await em.execute<Row[]>(
        `select * from "emergencies" where "id" = ?${options.forUpdate ? " for update" : ""}`,
        [id],
        "all",
      );
      return rows[0] === undefined ? undefined : toRecord(rows[0]);
    },

    /** Several emergencies by id (any order; missing ones left out). */
    async getMany(em: EntityManager, ids: readonly string[]): Promise<EmergencyRecord[]> {
      if (ids.length === 0) return [];
      const rows = await em.execute<Row[]>(`select * from "emergencies" where "id" in (?)`, [[...ids]], "all");
      return rows.map(toRecord);
    },

    /** Request ids recorded since `since`, newest first: the retries a fresh process may still see. */
    async recentRequests(
      em: EntityManager,
      since: Date,
      limit: number,
    ): Promise<Array<{ patientId: string; requestId: string; emergencyId: string; merged: boolean }>> {
      const rows = await em.execute<Row[]>(
        `select "patient_id", "request_id", "emergency_id", "merged" from "emergency_requests" where "created_at" > ? order by "created_at" desc limit ?`,
        [since, limit],
        "all",
      );
      return rows.map((row) => ({
        patientId: row.patient_id as string,
        requestId: row.request_id as string,
        emergencyId: row.emergency_id as string,
        merged: row.merged as boolean,
      }));
    },

    /** Changes columns of a locked emergency, bumping its version; returns it as stored now. */
    async update(
      em: EntityManager,
      id: string,
      changes: Partial<{
        state: EmergencyState;
        lastSourceSequence: number;
        timelineLength: number;
        assignment: StoredAssignment;
        mergedRequestCount: number;
        cancelledBy: string;
        cancelledByRole: string;
        cancelReason: string;
        endedAt: Date;
        dispatchedAt: Date;
        updatedAt: Date;
      }>,
    ): Promise<EmergencyRecord> {
      const sets: string[] = [];
      const params: unknown[] = [];
      const { cancelReason, ...plain } = changes;
      if (cancelReason !== undefined) {
        // Sealed under the row's own data key (the caller holds the row's lock).
        const keyRows = await em.execute<Row[]>(
          `select "data_key_wrapped" from "emergencies" where "id" = ?`,
          [id],
          "all",
        );
        sets.push(`"cancel_reason_sealed" = ?`);
        params.push(sealer.sealCancelReason(id, keyRows[0]?.data_key_wrapped as string, cancelReason));
      }
      for (const [key, value] of Object.entries(plain)) {
        const column = key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
        sets.push(key === "assignment" ? `"${column}" = ?::jsonb` : `"${column}" = ?`);
        params.push(key === "assignment" ? JSON.stringify(value) : value);
      }
      params.push(id);
      const rows = await em.execute<Row[]>(
        `update "emergencies" set ${sets.join(", ")}, "version" = "version" + 1 where "id" = ? returning *`,
        params,
        "all",
      );
      return toRecord(rows[0] as Row);
    },

    async insertEvent(em: EntityManager, emergencyId: string, entry: TimelineEntry, now: Date): Promise<void> {
      await em.execute(
        `insert into "emergency_events" ("emergency_id", "position", "state", "source_sequence", "event_time", "actor", "actor_role", "note", "recorded_at") values (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          emergencyId,
          entry.position,
          entry.state,
          entry.sourceSequence,
          entry.eventTime,
          entry.actor,
          entry.actorRole,
          entry.note,
          now,
        ],
        "run",
      );
    },

    async timeline(em: EntityManager, emergencyIds: readonly string[]): Promise<Map<string, TimelineEntry[]>> {
      const byId = new Map<string, TimelineEntry[]>(emergencyIds.map((id) => [id, []]));
      if (emergencyIds.length === 0) return byId;
      const rows = await em.execute<Row[]>(
        `select * from "emergency_events" where "emergency_id" in (${emergencyIds.map(() => "?").join(", ")}) order by "emergency_id", "position"`,
        [...emergencyIds],
        "all",
      );
      for (const row of rows) {
        byId.get(row.emergency_id as string)?.push({
          position: row.position as number,
          state: row.state as EmergencyState,
          sourceSequence: row.source_sequence === null ? null : Number(row.source_sequence),
          eventTime: new Date(row.event_time as string),
          actor: row.actor as string,
          actorRole: row.actor_role as string,
          note: row.note as string,
        });
      }
      return byId;
    },

    /** A patient's emergencies, newest first, below `beforeId` when paging. */
    async list(
      em: EntityManager,
      patientId: string,
      states: readonly EmergencyState[],
      beforeId: string | undefined,
      limit: number,
    ): Promise<EmergencyRecord[]> {
      const params: unknown[] = [patientId];
      let where = `"patient_id" = ?`;
      if (states.length > 0) {
        where += ` and "state" in (${states.map(() => "?").join(", ")})`;
        params.push(...states);
      }
      if (beforeId !== undefined) {
        where += ` and "id" < ?`;
        params.push(beforeId);
      }
      params.push(limit);
      const rows = await em.execute<Row[]>(
        `select * from "emergencies" where ${where} order by "id" desc limit ?`,
        params,
        "all",
      );
      return rows.map(toRecord);
    },

    async insertOutbox(
      em: EntityManager,
      row: {
        id: string;
        emergencyId: string;
        topic: "requested" | "cancelled";
        priority: Priority;
        msgId: string;
        payload: Uint8Array;
      },
      now: Date,
      /** Already on the lane (the journal path got its PubAck): the relay leaves it alone. */
      sentAt?: Date,
    ): Promise<void> {
      await em.execute(
        `insert into "emergency_outbox" ("id", "emergency_id", "topic", "priority", "msg_id", "payload", "attempts", "next_attempt_at", "created_at", "sent_at") values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict ("msg_id") do nothing`,
        [
          row.id,
          row.emergencyId,
          row.topic,
          row.priority,
          row.msgId,
          Buffer.from(row.payload),
          sentAt === undefined ? 0 : 1,
          now,
          now,
          sentAt ?? null,
        ],
        "run",
      );
    },
  };
}

function recordOf(row: Row, sealer: EmergencySealer): EmergencyRecord {
  const id = row.id as string;
  const wrapped = row.data_key_wrapped as string;
  const details = sealer.open(id, wrapped, row.details_sealed as string);
  const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));
  return {
    id,
    patientId: row.patient_id as string,
    kind: row.kind as EmergencyRecord["kind"],
    severity: row.severity as EmergencyRecord["severity"],
    priority: Number(row.priority) as Priority,
    description: details.description,
    location: details.location,
    callbackPhone: details.callbackPhone,
    state: row.state as EmergencyState,
    lastSourceSequence: Number(row.last_source_sequence),
    timelineLength: Number(row.timeline_length),
    assignment: (typeof row.assignment === "string"
      ? JSON.parse(row.assignment)
      : row.assignment) as StoredAssignment | null,
    requestedBy: row.requested_by as string,
    requestedByRole: row.requested_by_role as string,
    mergedRequestCount: Number(row.merged_request_count),
    cancelledBy: (row.cancelled_by as string | null) ?? null,
    cancelledByRole: (row.cancelled_by_role as string | null) ?? null,
    cancelReason: sealer.openCancelReason(id, wrapped, (row.cancel_reason_sealed as string | null) ?? null),
    version: Number(row.version),
    createdAt: date(row.created_at) as Date,
    updatedAt: date(row.updated_at) as Date,
    endedAt: date(row.ended_at),
    dispatchedAt: date(row.dispatched_at),
  };
}
