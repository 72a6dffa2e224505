import { defineEntity, p } from "@mikro-orm/core";
import { PatientEntity } from "../patients/patient-entity.ts";
import {
  type ActorRoleName,
  actorRoleNames,
  type ConsentMethod,
  consentMethods,
  type FamilyGrantName,
  type FamilyLink,
  familyGrantNames,
  type LinkState,
  linkStates,
  type Relationship,
  relationships,
} from "./family-link.ts";

/**
 * The `family_links` table. The schema lives here and in
 * Migration20261128140000_create_family_links (test/db/schema-drift.test.ts keeps them
 * in step). Rows are read and written with hand-written SQL (family-link-repository.ts),
 * never through the unit of work; the relations exist for the foreign keys.
 *
 * - `dependent_id` is null for an invitation by email until a patient answers it; the
 *   invitee is found by `invitee_email_hash` (the address's blind index, as
 *   `patients.email_index` holds it: an HMAC under its own key), so the address is
 *   not stored a second time and the guardian learns nothing from it.
 * - `state` is the stored state; EXPIRED is also evaluated at read time from
 *   `end_time` (a minor's age of majority) and the invitation's age, so no job runs.
 * - At most one link per (guardian, dependent) waits for consent or is in force: the
 *   partial unique index `family_links_pair_live_unique`.
 * - `create_request_id` is the AIP-155 request id of the create that made the row.
 * - `grants`, `relationship`, `state`, consent method and actor roles are the lower-case
 *   short names of the proto enums (family-link.ts), checked by the database.
 */
export const FamilyLinkEntity = defineEntity({
  name: "FamilyLink",
  tableName: "family_links",
  properties: {
    id: p.uuid().primary(),
    guardian: () => p.manyToOne(PatientEntity).deleteRule("no action").updateRule("no action"),
    dependent: () => p.manyToOne(PatientEntity).nullable().deleteRule("no action").updateRule("no action"),
    inviteeEmailHash: p.string().length(64).nullable(),
    relationship: p.enum(relationships),
    grants: p.enum(familyGrantNames).array(),
    state: p.enum(linkStates),
    consentMethod: p.enum(consentMethods).nullable(),
    consentActor: p.string().length(255).nullable(),
    consentActorRole: p.enum(actorRoleNames).nullable(),
    consentTime: p.datetime(3).nullable(),
    revokedBy: p.string().length(255).nullable(),
    revokedByRole: p.enum(actorRoleNames).nullable(),
    revokeReason: p.string().length(500).nullable(),
    revokedAt: p.datetime(3).nullable(),
    endTime: p.datetime(3).nullable(),
    createRequestId: p.uuid().nullable().unique("family_links_create_request_id_unique"),
    /** Optimistic lock: every change bumps it; the etag is `v<version>`. */
    version: p.integer().version(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
  checks: [
    { name: "family_links_not_self_check", expression: "guardian_id <> dependent_id" },
    { name: "family_links_grants_not_empty_check", expression: "cardinality(grants) > 0" },
    { name: "family_links_active_consent_check", expression: "state <> 'active' or consent_time is not null" },
  ],
  uniques: [
    {
      name: "family_links_pair_live_unique",
      properties: ["guardian", "dependent"],
      where: "state in ('pending_consent', 'active')",
    },
  ],
  // The list indexes are (patient DESC, id DESC): with equality on the first column its
  // direction does not matter, and MikroORM's index introspection reads the sort order of
  // "id" from inside "guardian_id", so (ASC, DESC) would never stop showing as drift.
  indexes: [
    // ListFamilyLinks as guardian: newest first (ids are UUIDv7, so id order is creation order).
    {
      name: "family_links_guardian_list_idx",
      columns: [
        { name: "guardian_id", sort: "desc" },
        { name: "id", sort: "desc" },
      ],
    },
    // ListFamilyLinks as dependent.
    {
      name: "family_links_dependent_list_idx",
      columns: [
        { name: "dependent_id", sort: "desc" },
        { name: "id", sort: "desc" },
      ],
    },
    // Invitations by email not answered yet, found by the invitee's email hash.
    {
      name: "family_links_invitee_email_hash_idx",
      properties: ["inviteeEmailHash"],
      where: "dependent_id is null",
    },
  ],
});

/** A row as `em.execute` returns it (timestamps and dates as text, text[] as an array). */
export interface FamilyLinkRecord {
  readonly id: string;
  readonly guardian_id: string;
  readonly dependent_id: string | null;
  readonly invitee_email_hash: string | null;
  readonly relationship: Relationship;
  /** The pg driver parses text[] into an array. */
  readonly grants: FamilyGrantName[];
  readonly state: LinkState;
  readonly consent_method: ConsentMethod | null;
  readonly consent_actor: string | null;
  readonly consent_actor_role: ActorRoleName | null;
  readonly consent_time: string | Date | null;
  readonly revoked_by: string | null;
  readonly revoked_by_role: ActorRoleName | null;
  readonly revoke_reason: string | null;
  readonly revoked_at: string | Date | null;
  readonly end_time: string | Date | null;
  readonly create_request_id: string | null;
  readonly version: number;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
  readonly dependent_given_name: string | null;
  readonly dependent_family_name: string | null;
  readonly dependent_birth_date: string | null;
  readonly caller_is_invitee?: boolean | null;
}

/** The link's columns and its dependent's live profile (no profile once it is deleted). */
export const linkSelect =
  `select fl."id", fl."guardian_id", fl."dependent_id", fl."invitee_email_hash", fl."relationship", fl."grants", ` +
  `fl."state", fl."consent_method", fl."consent_actor", fl."consent_actor_role", fl."consent_time", fl."revoked_by", ` +
  `fl."revoked_by_role", fl."revoke_reason", fl."revoked_at", fl."end_time", fl."create_request_id", fl."version", ` +
  `fl."created_at", fl."updated_at", d."given_name" as "dependent_given_name", ` +
  `d."family_name" as "dependent_family_name", d."birth_date" as "dependent_birth_date"`;
export const linkFrom = `from "family_links" fl left join "patients" d on d."id" = fl."dependent_id" and d."deleted_at" is null`;

/** A row (with its dependent's profile columns) to the domain type. */
export function linkFromRecord(record: FamilyLinkRecord): FamilyLink {
  return {
    id: record.id,
    guardianId: record.guardian_id,
    dependentId: record.dependent_id ?? undefined,
    inviteeEmailHash: record.invitee_email_hash ?? undefined,
    relationship: record.relationship,
    grants: record.grants,
    storedState: record.state,
    consent:
      record.consent_method !== null && record.consent_time !== null
        ? {
            method: record.consent_method,
            actor: { principal: record.consent_actor ?? "", role: record.consent_actor_role ?? "system" },
            time: toDate(record.consent_time),
          }
        : undefined,
    revocation:
      record.revoked_at !== null
        ? {
            actor: { principal: record.revoked_by ?? "", role: record.revoked_by_role ?? "system" },
            reason: record.revoke_reason ?? "",
            time: toDate(record.revoked_at),
          }
        : undefined,
    endTime: record.end_time === null ? undefined : toDate(record.end_time),
    createRequestId: record.create_request_id ?? undefined,
    version: record.version,
    createTime: toDate(record.created_at),
    updateTime: toDate(record.updated_at),
    dependent:
      record.dependent_id !== null && record.dependent_birth_date !== null
        ? {
            id: record.dependent_id,
            displayName: displayName(record.dependent_given_name ?? "", record.dependent_family_name ?? ""),
            birthDate: dateText(record.dependent_birth_date),
          }
        : undefined,
  };
}

/** How a patient's name is shown on a link: `Given Family`. */
export function displayName(given: string, family: string): string {
  return family === "" ? given : `${given} ${family}`;
}

/** `date` as text (`1990-04-02`), or a Date the driver made of it. */
export function dateText(value: string | Date): string {
  return value instanceof Date ? value.toISOString().slice(0, 10) : value.slice(0, 10);
}

function toDate(value: string | Date): Date {
  return value instanceof Date ? value : new Date(value);
}
