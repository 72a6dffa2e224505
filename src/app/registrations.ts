import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { BillingService } from "../../gen/telemed/patient/v1/billing_service_pb.js";
import { ConsultationService } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import { EmergencyService } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { InsightService } from "../../gen/telemed/patient/v1/insight_service_pb.js";
import { NotificationService } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { RecordService } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { patientService } from "../patients/patient-handlers.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import type { ServiceRegistration } from "../rpc/call-pipeline.ts";
import type { Clock } from "../shared/clock.ts";

/** What the implemented services need. */
export interface ServiceDeps {
  readonly patients: PatientRepository;
  readonly clock: Clock;
}

/**
 * Every service the Patient Service serves. Contracts of later issues are served
 * already and answer UNIMPLEMENTED naming the issue that brings them, so clients,
 * reflection and the REST routes show the whole API surface now.
 */
export function serviceRegistrations(deps: ServiceDeps): ServiceRegistration[] {
  return [
    { service: PatientService, impl: patientService(deps.patients, deps.clock) },
    { service: AuthService, impl: {}, landsWith: "issue #3 (identity and access)" },
    { service: FamilyService, impl: {}, landsWith: "issue #3 (identity and access)" },
    { service: AuditService, impl: {}, landsWith: "issue #3 (identity and access)" },
    { service: ConsultationService, impl: {}, landsWith: "issue #4 (teleconsultations and notifications)" },
    { service: NotificationService, impl: {}, landsWith: "issue #4 (teleconsultations and notifications)" },
    { service: EmergencyService, impl: {}, landsWith: "issue #5 (emergencies)" },
    { service: RecordService, impl: {}, landsWith: "issue #6 (medical records)" },
    { service: InsightService, impl: {}, landsWith: "issue #6 (medical records)" },
    { service: BillingService, impl: {}, landsWith: "issue #7 (billing and payments)" },
  ];
}
