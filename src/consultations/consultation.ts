import type { ConsultationActorRole, ConsultationModeName } from "./consultation-entity.ts";
import type { ConsultationState } from "./consultation-states.ts";

/** Who did something to a consultation. */
export interface ConsultationActor {
  /** `patients/{id}`, `doctors/{account}`, `admins/{account}`, `services/{client}`; empty for the system. */
  readonly principal: string;
  readonly role: ConsultationActorRole;
}

/** A consultation as the domain sees it (one row of `consultations`). */
export interface Consultation {
  readonly id: string;
  readonly patientId: string;
  readonly doctorId: string;
  readonly slotId: string;
  readonly mode: ConsultationModeName;
  /** The patient's reason, sealed (secret-box); undefined when none was given. */
  readonly reasonSealed: string | undefined;
  readonly state: ConsultationState;
  readonly startTime: Date;
  readonly endTime: Date;
  readonly doctorDisplayName: string;
  readonly price: { readonly amountMinor: number; readonly currencyCode: string };
  readonly bookedBy: ConsultationActor;
  readonly holdId: string | undefined;
  /** `doctors/{d}/appointments/{a}` once the Doctor Service confirmed the slot. */
  readonly appointment: string | undefined;
  readonly actualStartTime: Date | undefined;
  readonly actualEndTime: Date | undefined;
  readonly cancellation:
    | {
        readonly actor: ConsultationActor;
        /** The canceller's words, sealed (`sealText`, consultation-deps.ts); undefined for none. */
        readonly reasonSealed: string | undefined;
        readonly code: string | undefined;
        readonly time: Date;
      }
    | undefined;
  readonly rescheduleCount: number;
  readonly rescheduleRequestId: string | undefined;
  readonly createRequestId: string;
  readonly createFingerprint: string;
  readonly bookedAt: Date;
  /** The summary's record id, once a summary is attached. */
  readonly summaryRecordId: string | undefined;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** `doctors/{doctor}/slots/{slot}` of a consultation. */
export function slotNameOf(consultation: Pick<Consultation, "doctorId" | "slotId">): string {
  return `doctors/${consultation.doctorId}/slots/${consultation.slotId}`;
}

/** `patients/{p}/consultations/{c}`. */
export function consultationNameOf(consultation: Pick<Consultation, "patientId" | "id">): string {
  return `patients/${consultation.patientId}/consultations/${consultation.id}`;
}

/** A row as `em.execute` returns it. */
export interface ConsultationRecord {
  readonly id: string;
  readonly patient_id: string;
  readonly doctor_id: string;
  readonly slot_id: string;
  readonly mode: ConsultationModeName;
  readonly reason_sealed: string | null;
  readonly state: ConsultationState;
  readonly start_time: string | Date;
  readonly end_time: string | Date;
  readonly doctor_display_name: string;
  readonly price_amount_minor: string | number;
  readonly price_currency: string;
  readonly booked_by: string;
  readonly booked_by_role: ConsultationActorRole;
  readonly hold_id: string | null;
  readonly appointment: string | null;
  readonly actual_start_time: string | Date | null;
  readonly actual_end_time: string | Date | null;
  readonly cancelled_by: string | null;
  readonly cancelled_by_role: ConsultationActorRole | null;
  readonly cancel_reason_sealed: string | null;
  readonly cancel_code: string | null;
  readonly cancel_time: string | Date | null;
  readonly reschedule_count: number;
  readonly reschedule_request_id: string | null;
  readonly create_request_id: string;
  readonly create_fingerprint: string;
  readonly booked_at: string | Date;
  readonly summary_record_id: string | null;
  readonly version: number;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
}

/** The columns of a consultation aliased `c`, with its summary's record id (for `select` and `returning`). */
export const consultationReturning = `c.*, (select s."id" from "consultation_summaries" s where s."consultation_id" = c."id") as "summary_record_id"`;

/** The columns of a consultation with its summary's record id. */
export const consultationSelect = `select ${consultationReturning} from "consultations" c`;

/** A row to the domain type. */
export function consultationFromRecord(record: ConsultationRecord): Consultation {
  return {
    id: record.id,
    patientId: record.patient_id,
    doctorId: record.doctor_id,
    slotId: record.slot_id,
    mode: record.mode,
    reasonSealed: record.reason_sealed ?? undefined,
    state: record.state,
    startTime: toDate(record.start_time),
    endTime: toDate(record.end_time),
    doctorDisplayName: record.doctor_display_name,
    price: { amountMinor: Number(record.price_amount_minor), currencyCode: record.price_currency },
    bookedBy: { principal: record.booked_by, role: record.booked_by_role },
    holdId: record.hold_id ?? undefined,
    appointment: record.appointment ?? undefined,
    actualStartTime: optionalDate(record.actual_start_time),
    actualEndTime: optionalDate(record.actual_end_time),
    cancellation:
      record.cancel_time === null
        ? undefined
        : {
            actor: { principal: record.cancelled_by ?? "", role: record.cancelled_by_role ?? "system" },
            reasonSealed: record.cancel_reason_sealed ?? undefined,
            code: record.cancel_code ?? undefined,
            time: toDate(record.cancel_time),
          },
    rescheduleCount: record.reschedule_count,
    rescheduleRequestId: record.reschedule_request_id ?? undefined,
    createRequestId: record.create_request_id,
    createFingerprint: record.create_fingerprint,
    bookedAt: toDate(record.booked_at),
    summaryRecordId: record.summary_record_id ?? undefined,
    version: record.version,
    createdAt: toDate(record.created_at),
    updatedAt: toDate(record.updated_at),
  };
}

/** For the status cache: JSON text and back (dates as ISO strings). */
export function consultationToJson(consultation: Consultation): string {
  return JSON.stringify(consultation);
}

export function consultationFromJson(text: string): Consultation {
  const raw = JSON.parse(text) as Record<string, unknown> & { cancellation?: Record<string, unknown> };
  const dates = ["startTime", "endTime", "actualStartTime", "actualEndTime", "bookedAt", "createdAt", "updatedAt"];
  const parsed: Record<string, unknown> = { ...raw };
  for (const key of dates) if (typeof raw[key] === "string") parsed[key] = new Date(raw[key] as string);
  if (raw.cancellation) parsed.cancellation = { ...raw.cancellation, time: new Date(raw.cancellation.time as string) };
  return parsed as unknown as Consultation;
}

function toDate(value: string | Date): Date {
  return value instanceof Date ? value : new Date(value);
}

function optionalDate(value: string | Date | null): Date | undefined {
  return value === null ? undefined : toDate(value);
}
