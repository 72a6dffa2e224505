import { defineEntity, p } from "@mikro-orm/core";
import { AccountEntity } from "../auth/account-entities.ts";
import { PatientEntity } from "../patients/patient-entity.ts";
import { ConsultationEntity } from "./consultation-entity.ts";

/** Platform feedback categories, as stored. */
export const platformFeedbackCategories = ["usability", "bug", "performance", "accessibility", "other"] as const;
export type PlatformFeedbackCategory = (typeof platformFeedbackCategories)[number];

/**
 * `consultation_feedback`: a patient's rating of a completed consultation, one per
 * consultation (its primary key). `doctor_id` is copied from the consultation so a
 * doctor's aggregate is one index scan. The comment is sealed like the booking reason:
 * patients write about their health in it.
 */
export const ConsultationFeedbackEntity = defineEntity({
  name: "ConsultationFeedback",
  tableName: "consultation_feedback",
  properties: {
    consultation: () => p.manyToOne(ConsultationEntity).primary().deleteRule("no action").updateRule("no action"),
    patientId: p.uuid(),
    doctorId: p.string().length(64).index("consultation_feedback_doctor_idx"),
    rating: p.integer().check("rating >= 1 and rating <= 5"),
    commentSealed: p.text().nullable(),
    editDeadline: p.datetime(3),
    version: p.integer().version(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
});

/** `platform_feedback`: what patients say about the platform itself; a retried create is recognised by its request id. */
export const PlatformFeedbackEntity = defineEntity({
  name: "PlatformFeedback",
  tableName: "platform_feedback",
  properties: {
    id: p.uuid().primary(),
    patient: () => p.manyToOne(PatientEntity).deleteRule("no action").updateRule("no action"),
    createRequestId: p.uuid(),
    category: p.enum(platformFeedbackCategories),
    rating: p.integer().check("rating >= 0 and rating <= 5"),
    commentSealed: p.text(),
    appVersion: p.string().length(32),
    createdAt: p.datetime(3),
  },
  uniques: [{ name: "platform_feedback_create_request_unique", properties: ["patient", "createRequestId"] }],
});

/**
 * `consultation_summaries`: the doctor's summary of a consultation, one per consultation
 * (replaced when attached again). Its id is the record id the history shows
 * (`patients/{p}/records/{id}`, issue #6). The summary is sealed: it is clinical data.
 */
export const ConsultationSummaryEntity = defineEntity({
  name: "ConsultationSummary",
  tableName: "consultation_summaries",
  properties: {
    id: p.uuid().primary(),
    consultation: () =>
      p
        .manyToOne(ConsultationEntity)
        .unique("consultation_summaries_consultation_unique")
        .deleteRule("no action")
        .updateRule("no action"),
    patientId: p.uuid(),
    /** The summary (protobuf binary) sealed under the row's data key (consultation-summaries.ts). */
    summarySealed: p.text(),
    dataKeyWrapped: p.text(),
    dataKeyId: p.string().length(32).index("consultation_summaries_data_key_idx"),
    author: p.string().length(255),
    authorRole: p.string().length(16),
    attachRequestId: p.uuid(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
});

/**
 * `doctor_accounts`: which Doctor Service doctor (`doctors/{doctor_id}` there) a doctor's
 * login is. Written by the operator (`npm run account:create -- --role doctor
 * --doctor-id …`); a doctor account without a row acts on no consultation.
 */
export const DoctorAccountEntity = defineEntity({
  name: "DoctorAccount",
  tableName: "doctor_accounts",
  properties: {
    account: () => p.oneToOne(AccountEntity).primary().deleteRule("cascade").updateRule("no action"),
    doctorId: p.string().length(64).unique("doctor_accounts_doctor_id_unique"),
    createdAt: p.datetime(3),
  },
});
