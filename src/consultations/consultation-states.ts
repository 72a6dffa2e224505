import { DomainError } from "../shared/domain-errors.ts";

/**
 * The consultation state machine (RQ-PT003), without I/O, protobuf or the ORM:
 *
 *     REQUESTED --confirm--> SCHEDULED --start--> ONGOING --complete--> COMPLETED
 *     REQUESTED --cancel---> CANCELLED <--cancel-- SCHEDULED --mark_no_show--> NO_SHOW
 *     SCHEDULED --reschedule--> SCHEDULED
 *     ONGOING | COMPLETED --attach_summary--> (unchanged)
 *
 * Anything else is FAILED_PRECONDITION with reason INVALID_STATE_TRANSITION.
 */
export const consultationStates = ["requested", "scheduled", "ongoing", "completed", "cancelled", "no_show"] as const;
export type ConsultationState = (typeof consultationStates)[number];

/** What can happen to a consultation. */
export const consultationEvents = [
  "confirm",
  "cancel",
  "reschedule",
  "start",
  "complete",
  "mark_no_show",
  "attach_summary",
] as const;
export type ConsultationEvent = (typeof consultationEvents)[number];

const transitions: Readonly<Record<ConsultationState, Partial<Record<ConsultationEvent, ConsultationState>>>> = {
  requested: { confirm: "scheduled", cancel: "cancelled" },
  scheduled: { cancel: "cancelled", reschedule: "scheduled", start: "ongoing", mark_no_show: "no_show" },
  ongoing: { complete: "completed", attach_summary: "ongoing" },
  completed: { attach_summary: "completed" },
  cancelled: {},
  no_show: {},
};

/** States that hold the doctor's slot: at most one consultation per slot among them (a database index). */
export const slotHoldingStates: readonly ConsultationState[] = [
  "requested",
  "scheduled",
  "ongoing",
  "completed",
  "no_show",
];

/** The state after `event`, or undefined when the machine does not allow it. */
export function stateAfter(state: ConsultationState, event: ConsultationEvent): ConsultationState | undefined {
  return transitions[state][event];
}

/** The state after `event`; FAILED_PRECONDITION (INVALID_STATE_TRANSITION) when it is not allowed. */
export function transition(state: ConsultationState, event: ConsultationEvent): ConsultationState {
  const next = stateAfter(state, event);
  if (next === undefined) throw invalidTransition(state, event);
  return next;
}

/** True when nothing can change the consultation's state any more. */
export function isFinal(state: ConsultationState): boolean {
  return Object.keys(transitions[state]).every((event) => event === "attach_summary");
}

const wording: Readonly<Record<ConsultationEvent, string>> = {
  confirm: "confirmed",
  cancel: "cancelled",
  reschedule: "rescheduled",
  start: "started",
  complete: "completed",
  mark_no_show: "marked as missed",
  attach_summary: "given a summary",
};

const stateWording: Readonly<Record<ConsultationState, string>> = {
  requested: "still being booked",
  scheduled: "scheduled",
  ongoing: "in progress",
  completed: "completed",
  cancelled: "cancelled",
  no_show: "marked as missed",
};

function invalidTransition(state: ConsultationState, event: ConsultationEvent): DomainError {
  return new DomainError(
    "failed-precondition",
    "INVALID_STATE_TRANSITION",
    `A consultation that is ${stateWording[state]} cannot be ${wording[event]}.`,
    { metadata: { state: state.toUpperCase(), event: event.toUpperCase() } },
  );
}
