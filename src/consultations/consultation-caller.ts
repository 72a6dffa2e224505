import type { HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../auth/principal.ts";
import { actingForKey, principalKey } from "../rpc/context-keys.ts";
import { DomainError, notFound } from "../shared/domain-errors.ts";
import type { Consultation, ConsultationActor } from "./consultation.ts";
import type { DoctorAccounts } from "./doctor-accounts.ts";

/** Who calls, as the consultation rules need it. */
export interface Caller {
  readonly actor: ConsultationActor;
  readonly principal: Principal;
  /** The guardian's own patient id when a patient acts for a dependent (a proxy). */
  readonly guardianPatientId: string | undefined;
  /** The Doctor Service id of a doctor caller; undefined for a doctor account without a link. */
  readonly doctorId: string | undefined;
}

/**
 * The caller of a call the pipeline admitted: the principal from the token, whether a
 * patient acts as a guardian, and for a doctor the Doctor Service doctor their account
 * is linked to.
 */
export async function callerOf(context: HandlerContext, doctors: DoctorAccounts): Promise<Caller> {
  const principal = context.values.get(principalKey);
  if (principal === undefined) throw new DomainError("unauthenticated", "INVALID_TOKEN", "Authentication required.");
  const actingFor = context.values.get(actingForKey);
  const proxy = principal.role === "patient" && actingFor?.proxy === true;
  const doctorId =
    principal.role === "doctor" && principal.accountId !== undefined
      ? await doctors.doctorIdOf(principal.accountId)
      : undefined;
  return {
    actor: {
      principal: principal.name,
      role: proxy ? "guardian" : principal.role === "paramedic" ? "service" : principal.role,
    },
    principal,
    guardianPatientId: proxy ? principal.patientId : undefined,
    doctorId,
  };
}

/**
 * NOT_FOUND unless the caller may see this consultation: its patient or their guardian
 * (the pipeline checked the patient in the name), its doctor, a service or an admin.
 * Another doctor gets the same answer as for a consultation that does not exist.
 */
export function requireParticipantOrStaff(caller: Caller, consultation: Consultation): void {
  if (caller.principal.role === "doctor" && caller.doctorId !== consultation.doctorId) throw notFound("Consultation");
}

/** The doctor side (start, complete, no-show, summary): the consultation's doctor, a service or an admin. */
export function requireDoctorSide(caller: Caller, consultation: Consultation): void {
  const role = caller.principal.role;
  if (role === "patient" || role === "paramedic") throw notFound("Consultation");
  requireParticipantOrStaff(caller, consultation);
}
