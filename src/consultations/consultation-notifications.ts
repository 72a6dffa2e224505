import { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";
import type { NotificationDraft } from "../notifications/notifier.ts";
import { type Consultation, consultationNameOf } from "./consultation.ts";

/** What happened to a consultation, for the patient's notification. */
export type ConsultationNews = "booked" | "cancelled" | "rescheduled" | "started" | "completed" | "no_show" | "summary";

/**
 * The notifications of a consultation change. Titles and bodies name the doctor and the
 * time only: never the reason, the summary or anything clinical, because they may go
 * out by SMS or show on a lock screen. The time is UTC in ISO form; clients render it
 * in the patient's zone from the subject resource.
 *
 * Recipients: the patient, and a guardian who acted for them in this change (so the
 * person who pressed the button hears the outcome too).
 */
export function consultationDrafts(
  consultation: Consultation,
  news: ConsultationNews,
  guardianPatientId: string | undefined,
): NotificationDraft[] {
  const { title, body } = wordingOf(consultation, news);
  const base = {
    category: NotificationCategory.CONSULTATIONS,
    priority: news === "cancelled" || news === "rescheduled" ? NotificationPriority.HIGH : NotificationPriority.NORMAL,
    title,
    body,
    subjectResource: consultationNameOf(consultation),
    // One per change: the version names it, so a retried transaction does not notify twice.
    dedupeKey: `consultation:${consultation.id}:v${consultation.version}`,
  };
  const drafts: NotificationDraft[] = [{ ...base, recipientPatientId: consultation.patientId }];
  if (guardianPatientId !== undefined && guardianPatientId !== consultation.patientId) {
    drafts.push({ ...base, recipientPatientId: guardianPatientId, aboutPatientId: consultation.patientId });
  }
  return drafts;
}

/** The reminder of an upcoming consultation, sent once per offset and start time. */
export function reminderDraft(consultation: Consultation, offsetSeconds: number): NotificationDraft {
  return {
    recipientPatientId: consultation.patientId,
    category: NotificationCategory.CONSULTATIONS,
    priority: NotificationPriority.HIGH,
    title: "Upcoming consultation",
    body: `Reminder: your consultation with ${consultation.doctorDisplayName} starts ${inWords(offsetSeconds)}, at ${at(consultation)}.`,
    subjectResource: consultationNameOf(consultation),
    dedupeKey: `consultation-reminder:${consultation.id}:${offsetSeconds}:${consultation.startTime.getTime()}`,
    expireTime: consultation.startTime,
  };
}

function wordingOf(c: Consultation, news: ConsultationNews): { title: string; body: string } {
  const doctor = c.doctorDisplayName;
  switch (news) {
    case "booked":
      return { title: "Consultation booked", body: `Your consultation with ${doctor} is booked for ${at(c)}.` };
    case "cancelled":
      return { title: "Consultation cancelled", body: `Your consultation with ${doctor} on ${at(c)} was cancelled.` };
    case "rescheduled":
      return { title: "Consultation rescheduled", body: `Your consultation with ${doctor} is now on ${at(c)}.` };
    case "started":
      return { title: "Consultation started", body: `${doctor} has started your consultation. Join now.` };
    case "completed":
      return { title: "Consultation completed", body: `Your consultation with ${doctor} is complete.` };
    case "no_show":
      return {
        title: "Consultation missed",
        body: `Your consultation with ${doctor} on ${at(c)} was marked as missed.`,
      };
    case "summary":
      return { title: "Consultation summary ready", body: `${doctor} added the summary of your consultation.` };
  }
}

function at(c: Consultation): string {
  return `${c.startTime.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function inWords(offsetSeconds: number): string {
  if (offsetSeconds % 86_400 === 0) return plural(offsetSeconds / 86_400, "day");
  if (offsetSeconds % 3600 === 0) return plural(offsetSeconds / 3600, "hour");
  return plural(Math.max(1, Math.round(offsetSeconds / 60)), "minute");
}

function plural(n: number, unit: string): string {
  return `in ${n} ${unit}${n === 1 ? "" : "s"}`;
}
