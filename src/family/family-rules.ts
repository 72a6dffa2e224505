import { DomainError, etagMismatch, invalidArgument, notFound } from "../shared/domain-errors.ts";
import {
  type Caller,
  type CallerSide,
  type FamilyGrantName,
  type FamilyLink,
  familyGrantNames,
  type LinkState,
  type Relationship,
  relationships,
} from "./family-link.ts";

/**
 * The rules of family links, without I/O: age of majority, expiry at read time,
 * who stands where on a link, and which transitions are allowed (AIP-216: a bad
 * transition is FAILED_PRECONDITION).
 */

/** The resource name used in error messages and reasons (`FAMILY_LINK_NOT_FOUND`). */
export const familyLinkResource = "Family link";

/** Default age of majority (FAMILY_AGE_OF_MAJORITY). */
export const defaultAgeOfMajority = 18;
/** Default lifetime of an unanswered invitation, after which it reads as EXPIRED. */
export const defaultInvitationLifetimeDays = 30;

/**
 * The moment a person born on `birthDate` (`YYYY-MM-DD`) reaches `age`: 00:00 UTC on
 * that birthday. A 29 February birthday comes of age on 1 March in non-leap years.
 */
export function comingOfAge(birthDate: string, age: number): Date {
  const year = Number(birthDate.slice(0, 4));
  const month = Number(birthDate.slice(5, 7));
  const day = Number(birthDate.slice(8, 10));
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  date.setUTCFullYear(year + age, month - 1, day);
  return date;
}

/** Whether a person born on `birthDate` is a minor at `now`. */
export function isMinorAt(birthDate: string, now: Date, ageOfMajority: number): boolean {
  return now.getTime() < comingOfAge(birthDate, ageOfMajority).getTime();
}

/**
 * What a link reads as at `now`: an ACTIVE link past its end time, or an invitation
 * past its end time or lifetime, is EXPIRED, whatever the row still says. Grants
 * apply only while this is `active`.
 */
export function effectiveState(link: FamilyLink, now: Date, invitationLifetimeMs: number): LinkState {
  const ended = link.endTime !== undefined && link.endTime.getTime() <= now.getTime();
  if (link.storedState === "active" && ended) return "expired";
  if (link.storedState === "pending_consent") {
    const lapsed = link.createTime.getTime() + invitationLifetimeMs <= now.getTime();
    if (ended || lapsed) return "expired";
  }
  return link.storedState;
}

/**
 * How `caller` stands to `link`. `isInvitee` says whether the caller's email matches
 * the invitation's email hash (only meaningful while no dependent is set). The
 * guardian side wins, so a guardian who invited their own address is not the dependent.
 */
export function sideOf(link: FamilyLink, caller: Caller, isInvitee: boolean): CallerSide {
  if (caller.role === "patient" && caller.patientId !== undefined) {
    if (caller.patientId === link.guardianId) return "guardian";
    if (caller.patientId === link.dependentId) return "dependent";
    if (link.dependentId === undefined && isInvitee) return "dependent";
  }
  if (caller.role === "admin") return "admin";
  return "none";
}

/** Get: guardian, dependent or admin; anyone else must not learn that the link exists. */
export function requireReader(side: CallerSide): void {
  if (side === "none") throw notFound(familyLinkResource);
}

/** Accept and decline: only the invited dependent. Those who may read the link learn why; others get NOT_FOUND. */
export function requireInvitee(side: CallerSide): void {
  if (side === "none") throw notFound(familyLinkResource);
  if (side !== "dependent") {
    throw new DomainError(
      "permission-denied",
      "ONLY_DEPENDENT_MAY_ANSWER",
      "Only the invited family member can accept or decline this invitation.",
    );
  }
}

/** The version an etag names, checked against the link's; an empty etag checks nothing. */
export function requireEtag(link: FamilyLink, etag: string): void {
  if (etag === "") return;
  if (etag !== `v${link.version}`) throw etagMismatch(familyLinkResource);
}

/** Accept and decline apply to an invitation still waiting for an answer. */
export function requirePending(state: LinkState): void {
  if (state !== "pending_consent") throw badState(state, "is not waiting for consent");
}

/** Update and revoke apply to a link still in force or waiting for consent. */
export function requireLive(state: LinkState): void {
  if (state !== "pending_consent" && state !== "active") throw badState(state, "has ended");
}

/** The changes an update asks for; a key present means "change it". */
export interface LinkChanges {
  readonly relationship?: Relationship;
  readonly grants?: readonly FamilyGrantName[];
}

/**
 * Who may change what (FamilyService contract): the guardian or an admin may change
 * the relationship and widen or narrow grants; the dependent may only narrow grants.
 */
export function requireAllowedChange(side: CallerSide, link: FamilyLink, changes: LinkChanges): void {
  if (side === "none") throw notFound(familyLinkResource);
  const current = new Set(link.grants);
  const widens = (changes.grants ?? []).some((grant) => !current.has(grant));
  // A dependent who accepted consented to these grants, not to more: the guardian may
  // narrow them, but a wider set needs the dependent's consent again (a new invitation).
  // A minor's link rests on parental authority, so there the guardian may widen.
  if (side === "guardian" && widens && link.consent?.method === "dependent_accepted") {
    throw new DomainError(
      "failed-precondition",
      "DEPENDENT_CONSENT_REQUIRED",
      "The dependent consented to the current grants only. Revoke this link and invite them again with the new grants.",
    );
  }
  if (side !== "dependent") return;
  if (changes.relationship !== undefined || widens) {
    throw new DomainError(
      "permission-denied",
      "DEPENDENT_MAY_ONLY_NARROW",
      "A dependent can only remove grants from a family link; the guardian changes the rest.",
    );
  }
}

/** Grants as given (protovalidate checks them on the wire; handlers called directly are checked here). */
export function checkedGrants(grants: readonly (FamilyGrantName | undefined)[], field: string): FamilyGrantName[] {
  if (grants.length === 0) throw invalidArgument(field, "at least one grant is required");
  if (grants.some((grant) => grant === undefined || !familyGrantNames.includes(grant))) {
    throw invalidArgument(field, "contains an unknown grant");
  }
  const unique = [...new Set(grants as FamilyGrantName[])];
  if (unique.length !== grants.length) throw invalidArgument(field, "grants must be unique");
  return unique;
}

/** A relationship as given; required wherever a link is made or its relationship changed. */
export function checkedRelationship(relationship: Relationship | undefined, field: string): Relationship {
  if (relationship === undefined || !relationships.includes(relationship)) {
    throw invalidArgument(field, "a relationship is required");
  }
  return relationship;
}

/** The resource name of a link. */
export function familyLinkName(guardianId: string, linkId: string): string {
  return `patients/${guardianId}/familyLinks/${linkId}`;
}

/** A request id the client reused for a different request (AIP-155). */
export function requestIdReused(): DomainError {
  const description = "was already used for a different request";
  return new DomainError("invalid-argument", "REQUEST_ID_REUSED", `This request_id ${description}.`, {
    violations: [{ field: "request_id", description }],
  });
}

/** The pair already has a link waiting for consent or in force. */
export function linkAlreadyExists(): DomainError {
  return new DomainError(
    "already-exists",
    "FAMILY_LINK_ALREADY_EXISTS",
    "These two patients already have a family link that is active or waiting for consent.",
  );
}

function badState(state: LinkState, what: string): DomainError {
  return new DomainError(
    "failed-precondition",
    "FAMILY_LINK_STATE_INVALID",
    `The family link ${what} (state ${state.toUpperCase()}).`,
    { metadata: { state: state.toUpperCase() } },
  );
}
