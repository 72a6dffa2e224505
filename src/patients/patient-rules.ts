import { DomainError, type FieldViolation } from "../shared/domain-errors.ts";
import type { PatientDraft, PatientFields } from "./patient.ts";

/**
 * The draft as a storable profile, or a DomainError listing every rule it breaks.
 * Runs on create and on the result of every update, so a field mask cannot clear
 * what a profile needs.
 */
export function completeProfile(draft: PatientDraft, today: Date): PatientFields {
  const violations = profileViolations(draft, today);
  if (violations.length > 0 || !draft.birthDate) {
    throw new DomainError("invalid-argument", "INVALID_PROFILE", "The profile is incomplete or invalid.", {
      violations,
    });
  }
  return { ...draft, birthDate: draft.birthDate };
}

/** Rules a stored profile always satisfies; field paths are the request's, under `prefix`. */
export function profileViolations(fields: PatientDraft, today: Date, prefix = "patient"): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const at = (path: string, description: string) => violations.push({ field: `${prefix}.${path}`, description });
  if (fields.legalName.given.trim() === "") at("legal_name.given_name", "is required");
  if (fields.contact.email === "") at("contact.email", "is required");
  const birth = fields.birthDate;
  if (!birth) at("birth_date", "is required");
  else {
    const problem = birthDateProblem(birth, today);
    if (problem) at("birth_date", problem);
  }
  const validUntil = fields.insurance?.validUntil;
  if (validUntil && !isCalendarDate(validUntil)) at("insurance.valid_until", "is not a calendar date");
  return violations;
}

function birthDateProblem(date: { year: number; month: number; day: number }, today: Date): string | undefined {
  if (!isCalendarDate(date)) return "is not a calendar date";
  if (date.year < 1900) return "must be in 1900 or later";
  const asUtc = Date.UTC(date.year, date.month - 1, date.day);
  const todayUtc = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  if (asUtc > todayUtc) return "cannot be in the future";
  return undefined;
}

function isCalendarDate({ year, month, day }: { year: number; month: number; day: number }): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const probe = new Date(Date.UTC(year, month - 1, day));
  return probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day;
}
