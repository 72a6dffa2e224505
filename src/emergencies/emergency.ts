/**
 * The emergency's pure rules (RQ-PT005, functional safety 1 and 3): states and their
 * order, severity to priority, which status events apply, when a repeat request is
 * merged. No I/O, no generated code: tested on their own.
 */

/** Life cycle, in order; CANCELLED ends it from any state before ON_SCENE. */
export const emergencyStates = [
  "dispatch_pending",
  "requested",
  "dispatched",
  "en_route",
  "on_scene",
  "transporting",
  "at_hospital",
  "closed",
  "cancelled",
] as const;
export type EmergencyState = (typeof emergencyStates)[number];

export const severities = ["critical", "serious", "urgent"] as const;
export type Severity = (typeof severities)[number];

export const emergencyKinds = [
  "cardiac",
  "breathing",
  "stroke",
  "trauma",
  "bleeding",
  "unconscious",
  "allergic_reaction",
  "seizure",
  "maternity",
  "poisoning",
  "other",
] as const;
export type EmergencyKind = (typeof emergencyKinds)[number];

/** P1 is served before P2 before P3; the only part of an emergency that appears in a subject. */
export type Priority = 1 | 2 | 3;

/** Dispatch priority of a reported severity. */
export function priorityOf(severity: Severity): Priority {
  return severity === "critical" ? 1 : severity === "serious" ? 2 : 3;
}

/** True once nothing can change it any more. */
export function isEnded(state: EmergencyState): boolean {
  return state === "closed" || state === "cancelled";
}

/** The requester may cancel until a unit is on scene (the crew decides from then on). */
export function isCancellable(state: EmergencyState): boolean {
  return emergencyStates.indexOf(state) < emergencyStates.indexOf("on_scene");
}

/** States a Paramedic Service status event may report. */
export const paramedicStates: ReadonlySet<EmergencyState> = new Set([
  "dispatched",
  "en_route",
  "on_scene",
  "transporting",
  "at_hospital",
  "closed",
  "cancelled",
]);

/** Why a status event was not applied. */
export type StatusSkip = "duplicate_or_stale" | "ended" | "backwards" | "not_a_paramedic_state";

/**
 * Whether a Paramedic Service event (`sequence`, `to`) applies to an emergency that is
 * in `current` and has applied events up to `lastSequence`. Events apply in sequence
 * order: one not newer than the last applied is a redelivery or arrived late and is
 * ignored (gaps are allowed: the publisher numbers steps it does not report). A newer
 * event never moves the emergency backwards, and nothing moves an ended one.
 */
export function statusDecision(
  current: EmergencyState,
  lastSequence: number,
  sequence: number,
  to: EmergencyState,
): { apply: true } | { apply: false; skip: StatusSkip } {
  if (!paramedicStates.has(to)) return { apply: false, skip: "not_a_paramedic_state" };
  if (sequence <= lastSequence) return { apply: false, skip: "duplicate_or_stale" };
  if (isEnded(current)) return { apply: false, skip: "ended" };
  if (to === "cancelled") return { apply: true };
  if (emergencyStates.indexOf(to) <= emergencyStates.indexOf(current)) return { apply: false, skip: "backwards" };
  return { apply: true };
}

/** What an open emergency looks like to the merge rule. */
export interface OpenEmergency {
  readonly state: EmergencyState;
  readonly priority: Priority;
  readonly createdAt: Date;
}

/**
 * Whether a new request for the same patient is a repeat of `open` (pressing the button
 * again, a relative calling too): still open, raised within the window, and not more
 * urgent. A more urgent report is never folded into a less urgent dispatch: it becomes
 * an emergency of its own, so the higher priority reaches the paramedics.
 */
export function mergesInto(open: OpenEmergency, priority: Priority, now: Date, windowSeconds: number): boolean {
  if (isEnded(open.state)) return false;
  if (now.getTime() - open.createdAt.getTime() > windowSeconds * 1000) return false;
  return priority >= open.priority;
}

/** Retry delay after `attempts` failures: doubling from `baseMs`, capped, with ±20% jitter. */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const plain = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
  return Math.round(plain * (0.8 + 0.4 * random()));
}
