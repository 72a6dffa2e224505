import { ConsultationEntity, ConsultationReminderEntity } from "./consultation-entity.ts";
import {
  ConsultationFeedbackEntity,
  ConsultationSummaryEntity,
  DoctorAccountEntity,
  PlatformFeedbackEntity,
} from "./feedback-entities.ts";

/** The consultations context's entities (registered in src/db/entities.ts). */
export const consultationEntities = [
  ConsultationEntity,
  ConsultationReminderEntity,
  ConsultationSummaryEntity,
  ConsultationFeedbackEntity,
  PlatformFeedbackEntity,
  DoctorAccountEntity,
] as const;
