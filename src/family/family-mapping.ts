import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ActorRole, type ActorSchema } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  FamilyConsent_Method,
  FamilyGrant,
  FamilyLinkRole,
  type FamilyLink as FamilyLinkProto,
  FamilyLinkSchema,
  FamilyLink_State,
  FamilyRelationship,
} from "../../gen/telemed/patient/v1/family_pb.js";
import type {
  ActorRoleName,
  ConsentMethod,
  FamilyGrantName,
  LinkActor,
  LinkState,
  Relationship,
} from "./family-link.ts";
import { familyLinkName } from "./family-rules.ts";
import type { LinkView } from "./family-link-views.ts";

/** Domain grant names to the proto enum, for responses and FamilyAccess. */
export const grantToProto: Record<FamilyGrantName, FamilyGrant> = {
  view_records: FamilyGrant.VIEW_RECORDS,
  book_consultations: FamilyGrant.BOOK_CONSULTATIONS,
  pay_bills: FamilyGrant.PAY_BILLS,
  request_emergencies: FamilyGrant.REQUEST_EMERGENCIES,
  manage_profile: FamilyGrant.MANAGE_PROFILE,
};
const grantFromProto = invert(grantToProto);

const relationshipToProto: Record<Relationship, FamilyRelationship> = {
  child: FamilyRelationship.CHILD,
  spouse_or_partner: FamilyRelationship.SPOUSE_OR_PARTNER,
  parent: FamilyRelationship.PARENT,
  sibling: FamilyRelationship.SIBLING,
  other_relative: FamilyRelationship.OTHER_RELATIVE,
  ward: FamilyRelationship.WARD,
};
const relationshipFromProtoMap = invert(relationshipToProto);

const stateToProto: Record<LinkState, FamilyLink_State> = {
  pending_consent: FamilyLink_State.PENDING_CONSENT,
  active: FamilyLink_State.ACTIVE,
  declined: FamilyLink_State.DECLINED,
  revoked: FamilyLink_State.REVOKED,
  expired: FamilyLink_State.EXPIRED,
};
const stateFromProto = invert(stateToProto);

const consentMethodToProto: Record<ConsentMethod, FamilyConsent_Method> = {
  dependent_accepted: FamilyConsent_Method.DEPENDENT_ACCEPTED,
  guardian_for_minor: FamilyConsent_Method.GUARDIAN_FOR_MINOR,
  admin_recorded: FamilyConsent_Method.ADMIN_RECORDED,
};

const actorRoleToProto: Record<ActorRoleName, ActorRole> = {
  patient: ActorRole.PATIENT,
  guardian: ActorRole.GUARDIAN,
  doctor: ActorRole.DOCTOR,
  paramedic: ActorRole.PARAMEDIC,
  admin: ActorRole.ADMIN,
  service: ActorRole.SERVICE,
  system: ActorRole.SYSTEM,
};

/** Proto grants to domain names; an unspecified or unknown value becomes undefined (the rules refuse it). */
export function grantsFromProto(grants: readonly FamilyGrant[]): (FamilyGrantName | undefined)[] {
  return grants.map((grant) => grantFromProto.get(grant));
}

/** A proto relationship, or undefined when unspecified or unknown. */
export function relationshipFromProto(relationship: FamilyRelationship): Relationship | undefined {
  return relationshipFromProtoMap.get(relationship);
}

/** The states of a ListFamilyLinks filter; unknown values are dropped (protovalidate refuses them first). */
export function statesFromProto(states: readonly FamilyLink_State[]): LinkState[] {
  return states.map((state) => stateFromProto.get(state)).filter((state) => state !== undefined);
}

/** Which side of the links ListFamilyLinks lists; unspecified means the guardian's. */
export function sideFromProto(role: FamilyLinkRole): "guardian" | "dependent" {
  return role === FamilyLinkRole.DEPENDENT ? "dependent" : "guardian";
}

/**
 * A link as the API shows it. The dependent (name, display name, minority) is shown
 * only once consent exists: before that an invitation must not tell the guardian
 * whether, or to whom, an invitation by email was delivered.
 */
export function linkToProto(view: LinkView): FamilyLinkProto {
  const { link } = view;
  const dependent = view.dependentVisible ? link.dependent : undefined;
  // A dependent who revoked an invitation without consenting stays anonymous too.
  const hidden = !view.dependentVisible && link.dependentId !== undefined ? `patients/${link.dependentId}` : undefined;
  const actorToProto = (actor: LinkActor): MessageInitShape<typeof ActorSchema> => ({
    principal: actor.principal === hidden ? "" : actor.principal,
    role: actorRoleToProto[actor.role],
    displayName: "",
  });
  return create(FamilyLinkSchema, {
    name: familyLinkName(link.guardianId, link.id),
    dependent: dependent ? `patients/${dependent.id}` : "",
    relationship: relationshipToProto[link.relationship],
    grants: link.grants.map((grant) => grantToProto[grant]),
    state: stateToProto[view.state],
    guardian: `patients/${link.guardianId}`,
    dependentDisplayName: dependent?.displayName ?? "",
    dependentIsMinor: dependent !== undefined && view.dependentIsMinor,
    endTime: link.endTime ? timestampFromDate(link.endTime) : undefined,
    consent: link.consent
      ? {
          method: consentMethodToProto[link.consent.method],
          actor: actorToProto(link.consent.actor),
          consentTime: timestampFromDate(link.consent.time),
        }
      : undefined,
    revocation: link.revocation
      ? {
          actor: actorToProto(link.revocation.actor),
          reason: link.revocation.reason,
          cancelTime: timestampFromDate(link.revocation.time),
        }
      : undefined,
    createTime: timestampFromDate(link.createTime),
    updateTime: timestampFromDate(link.updateTime),
    etag: `v${link.version}`,
  });
}

function invert<K extends string, V>(record: Record<K, V>): Map<V, K> {
  return new Map(Object.entries(record).map(([key, value]) => [value as V, key as K]));
}
