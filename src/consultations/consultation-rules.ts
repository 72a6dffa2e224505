import { DomainError } from "../shared/domain-errors.ts";

/**
 * Time rules of consultations, without I/O: the patient's change cut-off, the join
 * window, when reminders are due and how long feedback stays editable. Times are
 * epoch milliseconds; durations milliseconds.
 */

/** Until when a patient may cancel or reschedule: `cutoffMs` before the start. */
export function changeDeadline(startMs: number, cutoffMs: number): number {
  return startMs - cutoffMs;
}

/** FAILED_PRECONDITION (CHANGE_CUTOFF_PASSED) once the patient's deadline has passed. */
export function requireBeforeCutoff(nowMs: number, startMs: number, cutoffMs: number): void {
  if (nowMs > changeDeadline(startMs, cutoffMs)) {
    const minutes = Math.round(cutoffMs / 60_000);
    throw new DomainError(
      "failed-precondition",
      "CHANGE_CUTOFF_PASSED",
      `It is too late to change this consultation online: changes close ${minutes} minutes before the start. Please contact support.`,
      { metadata: { change_deadline: new Date(changeDeadline(startMs, cutoffMs)).toISOString() } },
    );
  }
}

/** From when join details are handed out. */
export function joinOpenTime(startMs: number, opensBeforeMs: number): number {
  return startMs - opensBeforeMs;
}

/** FAILED_PRECONDITION (JOIN_NOT_OPEN_YET) before the join window opens. */
export function requireJoinOpen(nowMs: number, startMs: number, opensBeforeMs: number): void {
  const opens = joinOpenTime(startMs, opensBeforeMs);
  if (nowMs < opens) {
    const at = new Date(opens).toISOString();
    throw new DomainError("failed-precondition", "JOIN_NOT_OPEN_YET", `Joining opens at ${at}.`, {
      metadata: { join_open_time: at },
    });
  }
}

/** FAILED_PRECONDITION (CONSULTATION_NOT_STARTED) before the start: nobody can have missed it yet. */
export function requireStarted(nowMs: number, startMs: number): void {
  if (nowMs < startMs) {
    throw new DomainError(
      "failed-precondition",
      "CONSULTATION_NOT_STARTED",
      "A consultation can be marked as missed only after its start time.",
    );
  }
}

/** FAILED_PRECONDITION (SLOT_IN_PAST) for a slot that has started. */
export function requireFutureSlot(nowMs: number, startMs: number): void {
  if (startMs <= nowMs) {
    throw new DomainError(
      "failed-precondition",
      "SLOT_IN_PAST",
      "This time has already passed. Please choose a later slot.",
    );
  }
}

/** One appointment as the reminder rule sees it. */
export interface ReminderCandidate {
  readonly startMs: number;
  /** When it was booked (or last rescheduled): offsets before this were never meant for it. */
  readonly bookedMs: number;
}

/**
 * The reminder offset (seconds before the start) to send now, or undefined. An offset
 * is due once its time has come and the start has not; of several due at once (the
 * service was down, or the booking came late) only the nearest to the start is sent,
 * so a patient never gets "tomorrow" after "in 15 minutes". Offsets whose time came
 * before the booking are skipped: the booking confirmation told the patient already.
 * `sent` are the offsets already recorded for this start time.
 */
export function dueReminderOffset(
  candidate: ReminderCandidate,
  offsetsSeconds: readonly number[],
  sent: ReadonlySet<number>,
  nowMs: number,
): number | undefined {
  if (nowMs >= candidate.startMs) return undefined;
  const due = offsetsSeconds
    .filter((offset) => offset > 0)
    .filter((offset) => {
      const at = candidate.startMs - offset * 1000;
      return at <= nowMs && at >= candidate.bookedMs;
    })
    .sort((a, b) => a - b);
  const nearest = due[0];
  if (nearest === undefined) return undefined;
  // A nearer offset already sent means this one is stale.
  if ([...sent].some((offset) => offset <= nearest)) return undefined;
  return nearest;
}

/** Until when feedback given at `createdMs` may be edited. */
export function feedbackEditDeadline(createdMs: number, windowMs: number): number {
  return createdMs + windowMs;
}

/** FAILED_PRECONDITION (FEEDBACK_EDIT_WINDOW_CLOSED) after the deadline. */
export function requireFeedbackEditable(nowMs: number, deadlineMs: number): void {
  if (nowMs > deadlineMs) {
    throw new DomainError(
      "failed-precondition",
      "FEEDBACK_EDIT_WINDOW_CLOSED",
      "This feedback can no longer be edited.",
    );
  }
}
