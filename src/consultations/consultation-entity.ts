import { defineEntity, p } from "@mikro-orm/core";
import { PatientEntity } from "../patients/patient-entity.ts";
import { consultationStates } from "./consultation-states.ts";

/** Modes as stored (the lower-case short names of ConsultationMode). */
export const consultationModes = ["video", "audio", "chat"] as const;
export type ConsultationModeName = (typeof consultationModes)[number];

/** Roles of who booked or cancelled, as stored. */
export const consultationActorRoles = ["patient", "guardian", "doctor", "admin", "service", "system"] as const;
export type ConsultationActorRole = (typeof consultationActorRoles)[number];

/**
 * The `consultations` table (Migration20261128150000_create_consultations mirrors it;
 * test/db/schema-drift.test.ts keeps the two in step). Rows are read and written with
 * hand-written SQL (consultation-repository.ts); the relation exists for the foreign key.
 *
 * - A slot is booked at most once whatever the concurrency: the partial unique index
 *   `consultations_slot_live_unique` on (doctor, slot) over every state but cancelled.
 *   The Doctor Service's hold is the first guard; this one does not trust it.
 * - `(patient_id, create_request_id)` is unique: a retried booking (AIP-155) finds the
 *   row it made; `create_fingerprint` (SHA-256 of doctor, slot, mode and reason) tells
 *   a retry from a different booking that reuses the id.
 * - `reason_sealed` is the patient's reason, health data: sealed with the service's
 *   secret key (AES-256-GCM, bound to the consultation id), never stored in clear.
 * - `version` is the optimistic version: the etag is `v<version>`, and the status
 *   cache orders its entries by it.
 */
export const ConsultationEntity = defineEntity({
  name: "Consultation",
  tableName: "consultations",
  properties: {
    id: p.uuid().primary(),
    patient: () => p.manyToOne(PatientEntity).deleteRule("no action").updateRule("no action"),
    doctorId: p.string().length(64),
    slotId: p.string().length(64),
    mode: p.enum(consultationModes),
    reasonSealed: p.text().nullable(),
    state: p.enum(consultationStates),
    startTime: p.datetime(3),
    endTime: p.datetime(3),
    doctorDisplayName: p.string().length(200),
    priceAmountMinor: p.bigint("number"),
    priceCurrency: p.string().length(3),
    bookedBy: p.string().length(255),
    bookedByRole: p.enum(consultationActorRoles),
    holdId: p.string().length(128).nullable(),
    appointment: p.string().length(200).nullable(),
    actualStartTime: p.datetime(3).nullable(),
    actualEndTime: p.datetime(3).nullable(),
    cancelledBy: p.string().length(255).nullable(),
    cancelledByRole: p.enum(consultationActorRoles).nullable(),
    /** The canceller's words, sealed like the reason (issue #6: free text is never stored in clear). */
    cancelReasonSealed: p.text().nullable(),
    /** Why the system cancelled (`booking_failed`), so a retried booking gets the same error. */
    cancelCode: p.string().length(32).nullable(),
    cancelTime: p.datetime(3).nullable(),
    rescheduleCount: p.integer(),
    rescheduleRequestId: p.uuid().nullable(),
    createRequestId: p.uuid(),
    createFingerprint: p.string().length(64),
    /** When it was booked or last rescheduled: reminders due before it are skipped. */
    bookedAt: p.datetime(3),
    version: p.integer().version(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
  uniques: [
    { name: "consultations_create_request_unique", properties: ["patient", "createRequestId"] },
    { name: "consultations_slot_live_unique", properties: ["doctorId", "slotId"], where: "state <> 'cancelled'" },
  ],
  indexes: [
    // ListConsultations of a patient, soonest first.
    { name: "consultations_patient_start_idx", properties: ["patient", "startTime", "id"] },
    // A doctor's consultations (`patients/-`).
    { name: "consultations_doctor_start_idx", properties: ["doctorId", "startTime", "id"] },
    // The reminder scan and the recovery of unconfirmed bookings.
    {
      name: "consultations_open_start_idx",
      properties: ["startTime"],
      where: "state in ('requested', 'scheduled')",
    },
  ],
});

/**
 * `consultation_reminders`: one row per reminder sent (consultation, offset, start
 * time). Its primary key is what makes a reminder go out once with any number of
 * replicas; a rescheduled consultation has a new start time, so its reminders go out again.
 */
export const ConsultationReminderEntity = defineEntity({
  name: "ConsultationReminder",
  tableName: "consultation_reminders",
  properties: {
    consultation: () => p.manyToOne(ConsultationEntity).primary().deleteRule("cascade").updateRule("no action"),
    offsetSeconds: p.integer().primary(),
    startTime: p.datetime(3).primary(),
    sentAt: p.datetime(3),
  },
});
