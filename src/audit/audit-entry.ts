import type { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import type { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";

/**
 * One fact for the audit log (RQ-PT004, functional safety 4): who, acting for whom,
 * what, on which resource, with what outcome. Never health data and never secrets:
 * resources are names (`patients/{id}/records/{id}`), reasons are status codes or
 * UPPER_SNAKE reasons, not messages.
 */
export interface AuditEntryDraft {
  /** Resource name of the actor (`patients/…`, `admins/…`, `services/…`); empty for anonymous callers or the system. */
  readonly actor: string;
  readonly actorRole: ActorRole;
  /** The patient whose data or account was acted on, as a bare id; undefined when none. */
  readonly subjectPatientId: string | undefined;
  /** True when the actor acted as a guardian for `subjectPatientId` ("acted as proxy"). */
  readonly proxy: boolean;
  readonly action: AuditAction;
  /** What was acted on, for example `patients/p1` or `patients/p1/familyLinks/l2`; empty when none. */
  readonly resource: string;
  readonly outcome: AuditOutcome;
  /** The RPC, `/telemed.patient.v1.PatientService/GetPatient`. */
  readonly rpc: string;
  readonly requestId: string;
  /** The client's IP address; empty when unknown. */
  readonly clientAddress: string;
  /** For a denial or failure: the status code or domain reason (`PERMISSION_DENIED`, `ETAG_MISMATCH`); else empty. */
  readonly reason: string;
}
