import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { auditService } from "../audit/audit-handlers.ts";
import { authService } from "../auth/auth-service.ts";
import type { Config } from "../config/config.ts";
import type { Orm } from "../db/orm.ts";
import { familyService } from "../family/family-handlers.ts";
import { patientService } from "../patients/patient-handlers.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import type { ServiceRegistration } from "../rpc/call-pipeline.ts";
import type { Clock } from "../shared/clock.ts";
import type { Security } from "./security.ts";

/** What the implemented services need. */
export interface ServiceDeps {
  readonly patients: PatientRepository;
  readonly clock: Clock;
  readonly security: Security;
  readonly orm: Orm;
  readonly config: Config;
}

/**
 * Every service the Patient Service serves: these, and `parts` (the services of the
 * contexts started on their own, src/app/*-part.ts). A contract whose issue has not landed
 * is registered with `impl: {}` and `landsWith`, so it is served and answers UNIMPLEMENTED
 * naming that issue (none left since billing, issue #7).
 */
export function serviceRegistrations(deps: ServiceDeps, parts: readonly ServiceRegistration[]): ServiceRegistration[] {
  return [
    {
      service: PatientService,
      impl: patientService(deps.patients, deps.clock, {
        disableAccountWithin: (em, patientId) =>
          deps.security.auth.accounts.disablePatientAccount(em, patientId, deps.clock.now()),
        endSessions: (accountId) => deps.security.auth.sessions.revokeAll(accountId, "profile_deleted"),
      }),
    },
    { service: AuthService, impl: authService(deps.security.auth) },
    {
      service: FamilyService,
      impl: familyService({
        em: () => deps.orm.em.fork(),
        patients: deps.patients,
        clock: deps.clock,
        ageOfMajority: deps.config.familyAgeOfMajority,
        audit: deps.security.audit,
      }),
    },
    {
      service: AuditService,
      impl: auditService({ orm: deps.orm, publicKeys: deps.security.auditVerifyKeys, clock: deps.clock }),
    },
    ...parts,
  ];
}
