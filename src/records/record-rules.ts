import { DomainError, invalidArgument } from "../shared/domain-errors.ts";
import type { RecordSourceName } from "./record-entity.ts";

/** Callers that may write records (the contract's CreateRecord policy). */
export type WriterRole = "patient" | "doctor" | "service" | "admin";

/** Who writes: the principal's role and name, and a doctor's Doctor Service id. */
export interface Writer {
  readonly role: WriterRole;
  /** `patients/{id}`, `doctors/{account}`, `services/{client}`, `admins/{account}`. */
  readonly principal: string;
  /** A doctor's linked Doctor Service id; undefined for other roles or an unlinked account. */
  readonly doctorId: string | undefined;
}

/** Where a writer's records come from. Admins transcribe clinical records (paper, other systems). */
export function sourceOf(role: WriterRole): RecordSourceName {
  switch (role) {
    case "patient":
      return "patient";
    case "service":
      return "service";
    default:
      return "clinician";
  }
}

/**
 * Whether this writer may create a record of `kind`: patients only their own notes;
 * doctors, services and admins every clinical kind but patient notes (those are the
 * patient's words). Consultation summaries are attached to their consultation
 * (ConsultationService.AttachConsultationSummary), never created here.
 */
export function requireWritableKind(role: WriterRole, kind: string): void {
  const refusal = kindRefusal(role, kind);
  if (refusal !== undefined) throw refusal;
}

/** Why this writer may not create a record of `kind` (`requireWritableKind`); undefined when it may. */
export function kindRefusal(role: WriterRole, kind: string): DomainError | undefined {
  if (kind === "consultation_summary") {
    return new DomainError(
      "invalid-argument",
      "SUMMARY_BELONGS_TO_CONSULTATION",
      "A consultation summary is attached to its consultation (ConsultationService.AttachConsultationSummary).",
      { violations: [{ field: "record.consultation_summary", description: "is attached through the consultation" }] },
    );
  }
  if ((role === "patient") !== (kind === "patient_note")) {
    return new DomainError(
      "permission-denied",
      "RECORD_KIND_NOT_ALLOWED",
      role === "patient"
        ? "Patients add notes (patient_note); clinical records come from their doctors."
        : "Patient notes are written by the patient.",
    );
  }
  return undefined;
}

/**
 * Whether this writer may amend or delete a stored record: a patient only notes they
 * wrote themselves; others only records that did not come from the patient.
 */
export function requireMayAmend(writer: Writer, stored: { source: RecordSourceName; author: string }): void {
  const allowed =
    writer.role === "patient"
      ? stored.source === "patient" && stored.author === writer.principal
      : stored.source !== "patient";
  if (!allowed) {
    throw new DomainError("permission-denied", "RECORD_NOT_EDITABLE", "You may not change this record.");
  }
}

/** The fields of a Record an update mask may name besides the kind's own field. */
const commonPaths = new Set(["effective_time", "consultation", "related_records"]);

/**
 * Checks an update mask against the stored kind: common fields, or the stored kind's
 * own field (its message is replaced as a whole). Naming another kind would change
 * the kind, which no update may do.
 */
export function requireMaskFitsKind(paths: readonly string[], kindField: string): void {
  for (const path of paths) {
    if (!commonPaths.has(path) && path !== kindField) {
      throw invalidArgument(
        "update_mask",
        `"${path}" would change the record's kind (${kindField}); kinds never change`,
      );
    }
  }
}

/** `{p}` and `{c}` of `patients/{p}/consultations/{c}`; undefined for anything else. */
export function consultationIdsOf(name: string): { patientId: string; consultationId: string } | undefined {
  const match = /^patients\/([A-Za-z0-9_-]{1,64})\/consultations\/([A-Za-z0-9_-]{1,64})$/.exec(name);
  return match === null ? undefined : { patientId: match[1] as string, consultationId: match[2] as string };
}

/** `{p}` and `{r}` of `patients/{p}/records/{r}`; undefined for anything else. */
export function recordIdsOf(name: string): { patientId: string; recordId: string } | undefined {
  const match = /^patients\/([A-Za-z0-9_-]{1,64})\/records\/([A-Za-z0-9_-]{1,64})$/.exec(name);
  return match === null ? undefined : { patientId: match[1] as string, recordId: match[2] as string };
}
