import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";

/** The kinds of authenticated caller. A guardian is a patient acting through a family link. */
export type PrincipalRole = "patient" | "doctor" | "paramedic" | "admin" | "service";

/**
 * Who is calling, established from the access token by the call pipeline before any
 * handler runs. Handlers read it with `principalOf(context)`; nothing the client
 * sends in a request body can change it.
 */
export interface Principal {
  readonly role: PrincipalRole;
  /**
   * Resource name of the caller: `patients/{id}`, `doctors/{id}`, `paramedics/{id}`,
   * `admins/{id}` or `services/{client_id}`. Goes into audit entries as the actor.
   */
  readonly name: string;
  /** The caller's account (`accounts/{id}` without the prefix); absent for services. */
  readonly accountId: string | undefined;
  /** The caller's own patient id, for role `patient`. */
  readonly patientId: string | undefined;
  /** The login session the token belongs to; absent for service tokens. */
  readonly sessionId: string | undefined;
  /**
   * False for a patient who has not enrolled in MFA yet: such a token opens only the
   * methods whose policy says `before_mfa` (enrolment, the account, log-out).
   */
  readonly fullAccess: boolean;
}

/** The audit log's name for a principal's role. */
export function actorRoleOf(role: PrincipalRole): ActorRole {
  switch (role) {
    case "patient":
      return ActorRole.PATIENT;
    case "doctor":
      return ActorRole.DOCTOR;
    case "paramedic":
      return ActorRole.PARAMEDIC;
    case "admin":
      return ActorRole.ADMIN;
    case "service":
      return ActorRole.SERVICE;
  }
}
