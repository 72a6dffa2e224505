import { defineEntity, p } from "@mikro-orm/core";
import { emergencyKinds, emergencyStates, severities } from "./emergency.ts";

/**
 * The emergencies context's tables. The schema lives here and in
 * Migration20261128160000_create_emergencies (test/db/schema-drift.test.ts keeps them
 * in step). Rows are read and written with hand-written SQL (emergency-store.ts,
 * outbox-relay.ts), never through the unit of work. No foreign key to `patients`: an
 * emergency is written on the emergencies' own connection pool and must never wait
 * on a lock of the profile row that routine work holds.
 */

/**
 * One row per emergency: the system of record (NATS only carries copies). What the
 * patient reported (description, location, callback phone) is sealed into
 * `details_sealed`, the cancel reason into `cancel_reason_sealed`, under the row's own
 * data key (emergency-sealing.ts; issue #6, safety 2); `last_source_sequence`
 * is the Paramedic Service's sequence of the last status event applied, the guard
 * against stale and duplicate events; `timeline_length` allocates timeline positions
 * under the row lock.
 */
export const EmergencyEntity = defineEntity({
  name: "Emergency",
  tableName: "emergencies",
  properties: {
    id: p.uuid().primary(),
    patientId: p.uuid(),
    kind: p.enum(emergencyKinds),
    severity: p.enum(severities),
    priority: p.smallint().check("priority >= 1 and priority <= 3"),
    detailsSealed: p.text(),
    dataKeyWrapped: p.text(),
    dataKeyId: p.string().length(32).index("emergencies_data_key_idx"),
    state: p.enum(emergencyStates),
    lastSourceSequence: p.bigint("number"),
    timelineLength: p.integer(),
    assignment: p.json<Record<string, unknown>>().nullable(),
    requestedBy: p.string().length(255),
    requestedByRole: p.text(),
    mergedRequestCount: p.integer(),
    cancelledBy: p.string().length(255).nullable(),
    cancelledByRole: p.text().nullable(),
    cancelReasonSealed: p.text().nullable(),
    version: p.integer(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    endedAt: p.datetime(3).nullable(),
    /** When JetStream acknowledged the dispatch message. */
    dispatchedAt: p.datetime(3).nullable(),
  },
  indexes: [
    // ListEmergencies (newest first: ids are UUIDv7) and the merge look-up of open ones.
    { name: "emergencies_patient_list_idx", properties: ["patientId", "id"] },
  ],
});

/**
 * Every client request id seen, per patient: the original request and the repeats
 * merged into it. A retry finds its emergency here, whether it created it or was merged.
 */
export const EmergencyRequestEntity = defineEntity({
  name: "EmergencyRequest",
  tableName: "emergency_requests",
  properties: {
    patientId: p.uuid().primary(),
    requestId: p.uuid().primary(),
    emergencyId: p.uuid(),
    merged: p.boolean(),
    createdAt: p.datetime(3),
  },
});

/** The timeline: every state an emergency entered, at positions 1, 2, 3, … */
export const EmergencyEventEntity = defineEntity({
  name: "EmergencyEvent",
  tableName: "emergency_events",
  properties: {
    emergencyId: p.uuid().primary(),
    position: p.integer().primary().autoincrement(false),
    state: p.enum(emergencyStates),
    /** The Paramedic Service's sequence, for events that came from it. */
    sourceSequence: p.bigint("number").nullable(),
    eventTime: p.datetime(3),
    actor: p.string().length(255),
    actorRole: p.text(),
    note: p.string().length(200),
    recordedAt: p.datetime(3),
  },
});

/**
 * Messages to publish on the JetStream lane, written in the transaction of the change
 * they announce. The relay claims due rows with `for update skip locked`, publishes
 * with `Nats-Msg-Id` = `msg_id`, and sets `sent_at` only after the PubAck.
 */
export const EmergencyOutboxEntity = defineEntity({
  name: "EmergencyOutbox",
  tableName: "emergency_outbox",
  properties: {
    id: p.uuid().primary(),
    emergencyId: p.uuid(),
    topic: p.enum(["requested", "cancelled"] as const),
    priority: p.smallint().check("priority >= 1 and priority <= 3"),
    msgId: p.string().length(80).unique("emergency_outbox_msg_id_unique"),
    payload: p.blob(),
    attempts: p.integer(),
    nextAttemptAt: p.datetime(3),
    lastError: p.string().length(64).nullable(),
    createdAt: p.datetime(3),
    sentAt: p.datetime(3).nullable(),
  },
  indexes: [
    // The relay's queue: unsent rows, P1 first, oldest first.
    { name: "emergency_outbox_due_idx", properties: ["priority", "createdAt"], where: "sent_at is null" },
  ],
});

/** The emergencies context's entities (registered in src/db/entities.ts). */
export const emergencyEntities = [
  EmergencyEntity,
  EmergencyRequestEntity,
  EmergencyEventEntity,
  EmergencyOutboxEntity,
] as const;
