import { defineEntity, p } from "@mikro-orm/core";
import { PatientEntity } from "../patients/patient-entity.ts";
import { recordSyncEntities } from "./record-sync-entities.ts";

/** Record kinds as stored (the lower-case short names of RecordKind, but CONSULTATION_SUMMARY: those live with consultations). */
export const recordKinds = [
  "prescription",
  "test_result",
  "xray_study",
  "allergy",
  "condition",
  "immunization",
  "blood_group",
  "patient_note",
] as const;
export type RecordKindName = (typeof recordKinds)[number];

/** Where a record came from, as stored. */
export const recordSources = ["clinician", "service", "patient"] as const;
export type RecordSourceName = (typeof recordSources)[number];

/**
 * `medical_records`: a patient's records but consultation summaries (those stay in
 * `consultation_summaries`, and the history merges both). Rows are read and written
 * with hand-written SQL (record-repository.ts); the entity describes the schema, which
 * Migration20261129100000_create_medical_records builds (test/db/schema-drift.test.ts).
 *
 * - `content_sealed` is the health data (the record's details and related records,
 *   protobuf binary), encrypted with the row's own data key (AES-256-GCM), which is
 *   stored wrapped by a key-encryption key in `data_key_wrapped`; `data_key_id` names
 *   that KEK so rotation finds the rows still wrapped by an old one. Both ciphertexts
 *   are bound to this table, their column and the row id (src/shared/crypto/envelope.ts).
 * - In clear, because the timeline filters and orders by them: kind, effective time,
 *   the consultation it belongs to, and who wrote it (principal names, never content).
 * - `(patient_id, create_request_id)` is unique: a retried CreateRecord (AIP-155) finds its row;
 *   `create_fingerprint` (an HMAC of the request under a key derived from the row's data
 *   key, so it says nothing about the content) tells a retry from a reuse of the id.
 * - `deleted_at` marks a tombstone: the record was entered in error; reads skip it and
 *   the change feed (`record_changes`, record-sync-entities.ts) hands it to devices as a deletion.
 * - `version` is the optimistic version; the etag is `v<version>`.
 */
export const MedicalRecordEntity = defineEntity({
  name: "MedicalRecord",
  tableName: "medical_records",
  properties: {
    id: p.uuid().primary(),
    patient: () => p.manyToOne(PatientEntity).deleteRule("no action").updateRule("no action"),
    kind: p.enum(recordKinds),
    effectiveTime: p.datetime(3),
    consultationId: p.uuid().nullable(),
    source: p.enum(recordSources),
    author: p.string().length(255),
    authorRole: p.string().length(16),
    contentSealed: p.text(),
    dataKeyWrapped: p.text(),
    dataKeyId: p.string().length(32).index("medical_records_data_key_idx"),
    createRequestId: p.uuid(),
    /** HMAC-SHA256 of the create request's content under a key derived from the row's data key. */
    createFingerprint: p.string().length(64),
    version: p.integer().version(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    deletedAt: p.datetime(3).nullable(),
    /** Why it was deleted, sealed with the row's data key (free text may be health data). */
    deleteReasonSealed: p.text().nullable(),
  },
  uniques: [{ name: "medical_records_create_request_unique", properties: ["patient", "createRequestId"] }],
  indexes: [
    // The timeline of a patient, newest first.
    { name: "medical_records_patient_effective_idx", properties: ["patient", "effectiveTime", "id"] },
    // The records of a consultation.
    { name: "medical_records_consultation_idx", properties: ["consultationId"] },
  ],
});

/** The records context's entities (registered in src/db/entities.ts). */
export const recordEntities = [MedicalRecordEntity, ...recordSyncEntities] as const;
