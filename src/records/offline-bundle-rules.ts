import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type BloodGroup,
  Condition_ClinicalStatus,
  Prescription_Status,
  type Record as RecordProto,
} from "../../gen/telemed/patient/v1/record_pb.js";

/** The record kinds an offline bundle draws from (besides consultation summaries). */
export const bundleKinds = ["allergy", "condition", "prescription", "immunization", "blood_group"] as const;
/** Immunizations in a bundle: the most recent ones. */
export const bundleImmunizations = 20;
/** Consultation summaries in a bundle: the most recent ones. */
export const bundleSummaries = 5;

/** The critical records of a patient, as an offline bundle carries them. */
export interface CriticalRecords {
  readonly allergies: RecordProto[];
  readonly conditions: RecordProto[];
  readonly currentMedications: RecordProto[];
  readonly immunizations: RecordProto[];
  readonly bloodGroup: BloodGroup | undefined;
}

const dayMs = 86_400_000;

/**
 * Picks what a paramedic needs from a patient's live records (newest effective time
 * first): active allergies; active conditions (unset status means active); current
 * medicines, meaning prescriptions that are active (or unset) and whose course has not
 * ended (a start date, else the effective time, plus the duration; 0 days is ongoing);
 * the most recent immunizations; and the newest recorded blood group.
 */
export function selectCritical(records: readonly RecordProto[], now: Date): CriticalRecords {
  const selected: CriticalRecords = {
    allergies: [],
    conditions: [],
    currentMedications: [],
    immunizations: [],
    bloodGroup: undefined,
  };
  let bloodGroup: BloodGroup | undefined;
  for (const record of records) {
    const details = record.details;
    switch (details.case) {
      case "allergy":
        if (details.value.active) selected.allergies.push(record);
        break;
      case "condition": {
        const status = details.value.clinicalStatus;
        if (status === Condition_ClinicalStatus.UNSPECIFIED || status === Condition_ClinicalStatus.ACTIVE) {
          selected.conditions.push(record);
        }
        break;
      }
      case "prescription":
        if (isCurrent(record, now)) selected.currentMedications.push(record);
        break;
      case "immunization":
        if (selected.immunizations.length < bundleImmunizations) selected.immunizations.push(record);
        break;
      case "bloodGroup":
        bloodGroup ??= details.value;
        break;
      default:
        break;
    }
  }
  return { ...selected, bloodGroup };
}

/** Whether a prescription is being taken at `now`. */
export function isCurrent(record: RecordProto, now: Date): boolean {
  if (record.details.case !== "prescription") return false;
  const prescription = record.details.value;
  if (prescription.status !== Prescription_Status.UNSPECIFIED && prescription.status !== Prescription_Status.ACTIVE) {
    return false;
  }
  if (prescription.durationDays === 0) return true;
  const start = prescription.startDate;
  const startMs =
    start !== undefined
      ? Date.UTC(start.year, start.month - 1, start.day)
      : record.effectiveTime === undefined
        ? now.getTime()
        : timestampMs(record.effectiveTime);
  // Through the whole last day, whatever the time zone.
  return now.getTime() < startMs + (prescription.durationDays + 1) * dayMs;
}
