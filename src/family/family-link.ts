/**
 * Family links as the domain sees them (issue 3, secondary requirement 4): a guardian's
 * right to act for a dependent. Plain data, no generated protobuf types and no ORM, so
 * the rules (family-rules.ts) are tested without I/O. The short lower-case names are
 * also what the `family_links` table stores: stable, readable in SQL.
 */

/** Something a guardian may do for a dependent (proto `FamilyGrant`). */
export type FamilyGrantName =
  | "view_records"
  | "book_consultations"
  | "pay_bills"
  | "request_emergencies"
  | "manage_profile";
export const familyGrantNames: readonly FamilyGrantName[] = [
  "view_records",
  "book_consultations",
  "pay_bills",
  "request_emergencies",
  "manage_profile",
];

/** How the dependent is related to the guardian (proto `FamilyRelationship`). */
export type Relationship = "child" | "spouse_or_partner" | "parent" | "sibling" | "other_relative" | "ward";
export const relationships: readonly Relationship[] = [
  "child",
  "spouse_or_partner",
  "parent",
  "sibling",
  "other_relative",
  "ward",
];

/**
 * Where a link is in its life, as stored. `expired` is also what a stored `active`
 * or `pending_consent` link reads as once its end time (or the invitation's lifetime)
 * has passed: expiry is evaluated at read time, no job has to run for it.
 */
export type LinkState = "pending_consent" | "active" | "declined" | "revoked" | "expired";
export const linkStates: readonly LinkState[] = ["pending_consent", "active", "declined", "revoked", "expired"];
/** The states in which a link holds the (guardian, dependent) pair: at most one such link per pair. */
export const liveStates: readonly LinkState[] = ["pending_consent", "active"];

/** How consent was obtained (proto `FamilyConsent.Method`). */
export type ConsentMethod = "dependent_accepted" | "guardian_for_minor" | "admin_recorded";
export const consentMethods: readonly ConsentMethod[] = ["dependent_accepted", "guardian_for_minor", "admin_recorded"];

/** The role an actor had in a change of a link (a subset of proto `ActorRole`). */
export type ActorRoleName = "patient" | "guardian" | "doctor" | "paramedic" | "admin" | "service" | "system";
export const actorRoleNames: readonly ActorRoleName[] = [
  "patient",
  "guardian",
  "doctor",
  "paramedic",
  "admin",
  "service",
  "system",
];

/** Who did something to a link: a resource name (`patients/…`, `admins/…`) and their role. */
export interface LinkActor {
  readonly principal: string;
  readonly role: ActorRoleName;
}

/** The consent behind a link; absent until the dependent (or the guardian, for a minor) consents. */
export interface LinkConsent {
  readonly method: ConsentMethod;
  readonly actor: LinkActor;
  readonly time: Date;
}

/** Who revoked a link, why and when. */
export interface LinkRevocation {
  readonly actor: LinkActor;
  readonly reason: string;
  readonly time: Date;
}

/** What the service knows about the dependent of a link (from their profile). */
export interface DependentProfile {
  readonly id: string;
  readonly displayName: string;
  /** `YYYY-MM-DD`. */
  readonly birthDate: string;
}

/** A stored family link. */
export interface FamilyLink {
  /** UUIDv7; the resource name is `patients/{guardianId}/familyLinks/{id}`. */
  readonly id: string;
  readonly guardianId: string;
  /** Undefined for an invitation by email that no patient has answered yet. */
  readonly dependentId: string | undefined;
  /** The invitee email's blind index (hex HMAC, as `patients.email_index`), for an invitation by email. */
  readonly inviteeEmailHash: string | undefined;
  readonly relationship: Relationship;
  readonly grants: readonly FamilyGrantName[];
  /** As stored; see `effectiveState` in family-rules.ts for what it reads as now. */
  readonly storedState: LinkState;
  readonly consent: LinkConsent | undefined;
  readonly revocation: LinkRevocation | undefined;
  /** When a minor dependent comes of age and the link ends by itself. */
  readonly endTime: Date | undefined;
  readonly createRequestId: string | undefined;
  readonly version: number;
  readonly createTime: Date;
  readonly updateTime: Date;
  /** The dependent's profile when the link names a live one. */
  readonly dependent: DependentProfile | undefined;
}

/** Who calls, as the family rules need it (from the authenticated principal). */
export interface Caller {
  /** Resource name, `patients/{id}`, `admins/{id}`, …: the actor of audit entries. */
  readonly name: string;
  readonly role: "patient" | "doctor" | "paramedic" | "admin" | "service";
  /** The caller's own patient id, for role `patient`. */
  readonly patientId: string | undefined;
}

/** How a caller stands to one link: decides what they may see and do. */
export type CallerSide = "guardian" | "dependent" | "admin" | "none";
