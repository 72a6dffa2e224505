import { auditEntities } from "../audit/audit-entities.ts";
import { authEntities } from "../auth/account-entities.ts";
import { billingEntities } from "../billing/billing-entities.ts";
import { consultationEntities } from "../consultations/consultation-entities.ts";
import { emergencyEntities } from "../emergencies/emergency-entities.ts";
import { FamilyLinkEntity } from "../family/family-link-entity.ts";
import { insightEntities } from "../insights/insight-entity.ts";
import { notificationEntities } from "../notifications/notification-entities.ts";
import { PatientEntity } from "../patients/patient-entity.ts";
import { recordEntities } from "../records/record-entity.ts";

/**
 * Every entity the ORM knows, listed by hand: explicit imports keep start-up free of
 * folder scanning and make a forgotten entity a visible omission in review. Each
 * bounded context adds its entities here.
 */
export const entities = [
  PatientEntity,
  ...authEntities,
  ...auditEntities,
  FamilyLinkEntity,
  ...consultationEntities,
  ...notificationEntities,
  ...emergencyEntities,
  ...recordEntities,
  ...insightEntities,
  ...billingEntities,
] as const;
