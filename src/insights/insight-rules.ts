/**
 * Health insight rules (issue #6, secondary requirement 3), without I/O, protobuf or
 * the ORM: pure functions of a patient's records, their consultations and "today".
 * Each rule has a stable, versioned id; an insight is identified by its rule and the
 * record it came from, so deriving again finds the same insight instead of a new one.
 */

/** A calendar date (google.type.Date without the protobuf), read in UTC. */
export interface CivilDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

/** A consultation summary with the consultation it summarises. */
export interface SummaryFact {
  readonly recordId: string;
  /** When the summary was stored (a follow-up must be booked after it). */
  readonly recordedAt: Date;
  readonly doctorId: string;
  readonly doctorName: string;
  readonly consultationStart: Date;
  readonly followUpDate: CivilDate | undefined;
}

/** A prescription record. */
export interface PrescriptionFact {
  readonly recordId: string;
  readonly medication: string;
  /** First day of treatment (the effective date when the record has none). */
  readonly startDate: CivilDate;
  /** Days of treatment; 0 for ongoing. */
  readonly durationDays: number;
  /** ACTIVE, or status not set. */
  readonly active: boolean;
  /** `doctors/{doctor}`, or empty. */
  readonly prescriber: string;
}

/** A test result record. */
export interface ResultFact {
  readonly recordId: string;
  readonly test: string;
  readonly interpretation: "abnormal" | "critical" | "other";
  readonly effectiveTime: Date;
  /** When the result was recorded (a follow-up must be booked after it). */
  readonly recordedAt: Date;
  /** `doctors/{doctor}`, or empty. */
  readonly orderedBy: string;
}

/** A consultation of the patient that was booked and not cancelled. */
export interface BookedConsultation {
  readonly doctorId: string;
  readonly bookedAt: Date;
}

/** Everything the rules look at for one patient. */
export interface PatientFacts {
  readonly summaries: readonly SummaryFact[];
  readonly prescriptions: readonly PrescriptionFact[];
  readonly results: readonly ResultFact[];
  readonly consultations: readonly BookedConsultation[];
}

export const insightKinds = ["follow_up_due", "prescription_ending", "abnormal_result_without_follow_up"] as const;
export type InsightKind = (typeof insightKinds)[number];

export const insightActions = ["book_consultation", "renew_prescription", "contact_doctor"] as const;
export type InsightAction = (typeof insightActions)[number];

/** The rule ids, one per kind; bump the version when a rule's meaning changes. */
export const ruleIds: Readonly<Record<InsightKind, string>> = {
  follow_up_due: "follow_up_due.v1",
  prescription_ending: "prescription_ending.v1",
  abnormal_result_without_follow_up: "abnormal_result_without_follow_up.v1",
};

/** What a rule derived: an insight as it should be now. */
export interface DerivedInsight {
  readonly kind: InsightKind;
  readonly ruleId: string;
  readonly sourceRecordId: string;
  readonly dueDate: CivilDate;
  readonly title: string;
  readonly explanation: string;
  readonly action: InsightAction;
  /** `doctors/{doctor}` the action is about, or empty. */
  readonly actionResource: string;
}

/** How far ahead the rules look, and how far back an abnormal result still counts. */
export interface RuleSettings {
  readonly horizonDays: number;
  readonly abnormalLookbackDays: number;
}

const dayMs = 86_400_000;

/** Every insight the rules derive from `facts` at `now`, earliest due date first. */
export function deriveInsights(facts: PatientFacts, now: Date, settings: RuleSettings): DerivedInsight[] {
  const today = civilDateOf(now);
  const derived = [
    ...facts.summaries.flatMap((s) => followUpDue(s, facts.consultations, today, settings)),
    ...facts.prescriptions.flatMap((p) => prescriptionEnding(p, today, settings)),
    ...facts.results.flatMap((r) => abnormalResult(r, facts.consultations, now, settings)),
  ];
  return derived.sort((a, b) => compareDates(a.dueDate, b.dueDate) || a.sourceRecordId.localeCompare(b.sourceRecordId));
}

/** A summary's follow-up date is within the horizon (or passed) and nothing was booked with that doctor since. */
export function followUpDue(
  summary: SummaryFact,
  consultations: readonly BookedConsultation[],
  today: CivilDate,
  settings: RuleSettings,
): DerivedInsight[] {
  const due = summary.followUpDate;
  if (due === undefined || daysBetween(today, due) > settings.horizonDays) return [];
  const booked = consultations.some(
    (c) => c.doctorId === summary.doctorId && c.bookedAt.getTime() > summary.recordedAt.getTime(),
  );
  if (booked) return [];
  const doctor = summary.doctorName || "Your doctor";
  return [
    {
      kind: "follow_up_due",
      ruleId: ruleIds.follow_up_due,
      sourceRecordId: summary.recordId,
      dueDate: due,
      title: "Follow-up due",
      explanation:
        `${doctor} asked to see you again by ${formatDate(due)} ` +
        `(consultation of ${formatDate(civilDateOf(summary.consultationStart))}); no follow-up with them is booked yet.`,
      action: "book_consultation",
      actionResource: `doctors/${summary.doctorId}`,
    },
  ];
}

/** An active prescription's last day is today or within the horizon. */
export function prescriptionEnding(
  prescription: PrescriptionFact,
  today: CivilDate,
  settings: RuleSettings,
): DerivedInsight[] {
  if (!prescription.active || prescription.durationDays <= 0) return [];
  const lastDay = addDays(prescription.startDate, prescription.durationDays - 1);
  const left = daysBetween(today, lastDay);
  if (left < 0 || left > settings.horizonDays) return [];
  const medicine = prescription.medication || "your medicine";
  return [
    {
      kind: "prescription_ending",
      ruleId: ruleIds.prescription_ending,
      sourceRecordId: prescription.recordId,
      dueDate: lastDay,
      title: "Prescription ending soon",
      explanation:
        `Your prescription of ${medicine} (${prescription.durationDays} days from ${formatDate(prescription.startDate)}) ` +
        `ends on ${formatDate(lastDay)}, ${left === 0 ? "today" : left === 1 ? "in 1 day" : `in ${left} days`}.`,
      action: "renew_prescription",
      actionResource: prescription.prescriber,
    },
  ];
}

/**
 * A result marked abnormal or critical within the look-back, with no consultation booked
 * since it was recorded (with the ordering doctor, when the result names one).
 */
export function abnormalResult(
  result: ResultFact,
  consultations: readonly BookedConsultation[],
  now: Date,
  settings: RuleSettings,
): DerivedInsight[] {
  if (result.interpretation === "other") return [];
  if (now.getTime() - result.effectiveTime.getTime() > settings.abnormalLookbackDays * dayMs) return [];
  const doctorId = result.orderedBy.startsWith("doctors/") ? result.orderedBy.slice("doctors/".length) : undefined;
  const booked = consultations.some(
    (c) => (doctorId === undefined || c.doctorId === doctorId) && c.bookedAt.getTime() > result.recordedAt.getTime(),
  );
  if (booked) return [];
  const test = result.test || "A test";
  const taken = civilDateOf(result.effectiveTime);
  return [
    {
      kind: "abnormal_result_without_follow_up",
      ruleId: ruleIds.abnormal_result_without_follow_up,
      sourceRecordId: result.recordId,
      dueDate: taken,
      title: result.interpretation === "critical" ? "Critical result to discuss" : "Abnormal result to discuss",
      explanation:
        `${test} of ${formatDate(taken)} was marked ${result.interpretation}, and no consultation ` +
        `${doctorId === undefined ? "" : "with the doctor who ordered it "}has been booked since.`,
      action: "book_consultation",
      actionResource: result.orderedBy,
    },
  ];
}

/** The UTC calendar date of an instant. */
export function civilDateOf(at: Date): CivilDate {
  return { year: at.getUTCFullYear(), month: at.getUTCMonth() + 1, day: at.getUTCDate() };
}

/** `to` minus `from` in whole days (negative when `to` is earlier). */
export function daysBetween(from: CivilDate, to: CivilDate): number {
  return Math.round((utcMs(to) - utcMs(from)) / dayMs);
}

export function addDays(date: CivilDate, days: number): CivilDate {
  return civilDateOf(new Date(utcMs(date) + days * dayMs));
}

export function compareDates(a: CivilDate, b: CivilDate): number {
  return utcMs(a) - utcMs(b);
}

/** `12 March 2027`. */
export function formatDate(date: CivilDate): string {
  return new Date(utcMs(date)).toLocaleDateString("en-GB", {
    day: "numeric",
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  });
}

function utcMs(date: CivilDate): number {
  return Date.UTC(date.year, date.month - 1, date.day);
}
