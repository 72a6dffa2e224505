import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { FamilyLinkSchema } from "../../gen/telemed/patient/v1/family_pb.js";
import type { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import type { AuditEntryDraft } from "../audit/audit-entry.ts";
import { callAuditKey } from "../audit/call-audit.ts";
import { actorRoleOf } from "../auth/principal.ts";
import type { Orm } from "../db/orm.ts";
import { patientDraftFromProto, patientIdFromName, patientToProto } from "../patients/patient-mapping.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import { profileViolations } from "../patients/patient-rules.ts";
import { actingForKey, clientAddressKey, principalKey, requestIdKey } from "../rpc/context-keys.ts";
import { populatedPaths } from "../rpc/field-mask.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import { methodPath } from "../rpc/rpc-table.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import type { Caller } from "./family-link.ts";
import { FamilyLinkRepository } from "./family-link-repository.ts";
import { type DependentProfiles, FamilyLinkCreation } from "./family-link-creation.ts";
import { type LinkAuditFact, LinkViews, type RecordAudit } from "./family-link-views.ts";
import { FamilyLinks } from "./family-links.ts";
import {
  grantsFromProto,
  linkToProto,
  relationshipFromProto,
  sideFromProto,
  statesFromProto,
} from "./family-mapping.ts";
import {
  defaultAgeOfMajority,
  defaultInvitationLifetimeDays,
  familyLinkResource,
  type LinkChanges,
} from "./family-rules.ts";

/** Where the family handlers write audit entries: inside the transaction of each change. */
export interface FamilyAuditSink {
  recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void>;
}

/** What FamilyService needs. */
export interface FamilyServiceDeps {
  /** A new EntityManager fork per call (`() => orm.em.fork()`), or the ORM itself. */
  readonly em: (() => EntityManager) | Orm;
  /**
   * Patient profiles: reads of dependents (a replayed CreateDependent), profiles created
   * in a transaction (`within`), and the email blind index invitations are matched by.
   */
  readonly patients: Pick<PatientRepository, "get" | "within" | "emailIndexOf">;
  readonly clock: Clock;
  /** FAMILY_AGE_OF_MAJORITY: a minor's link ends on this birthday (default 18). */
  readonly ageOfMajority?: number;
  /** How long an invitation waits for an answer before it reads as EXPIRED (default 30 days). */
  readonly invitationLifetimeDays?: number;
  /** The audit log; every change of a link records its entries in the change's transaction. */
  readonly audit?: FamilyAuditSink;
  /**
   * Patient profiles inside a transaction (CreateDependent creates the profile and its
   * link in one); defaults to `patients.within` that transaction.
   */
  readonly profilesIn?: (em: EntityManager) => Pick<DependentProfiles, "create">;
}

const defaultPageSize = 25;
const maxPageSize = 100;
const updatableFields = new Set(["grants", "relationship"]);

/**
 * FamilyService handlers: protobuf in, protobuf out. The caller comes from the
 * principal the call pipeline authenticated; the rules and transactions live in
 * FamilyLinks (family-links.ts).
 */
export function familyService(deps: FamilyServiceDeps): Partial<ServiceImpl<typeof FamilyService>> {
  const repository = new FamilyLinkRepository(deps.em);
  const views = new LinkViews(
    repository,
    deps.ageOfMajority ?? defaultAgeOfMajority,
    deps.invitationLifetimeDays ?? defaultInvitationLifetimeDays,
  );
  const creation = new FamilyLinkCreation({
    links: repository,
    views,
    clock: deps.clock,
    profiles: deps.patients,
    profilesIn: deps.profilesIn ?? ((em) => deps.patients.within(em)),
    emailIndex: (email) => deps.patients.emailIndexOf(email),
  });
  const links = new FamilyLinks({ links: repository, views, clock: deps.clock });
  return {
    async createDependent(request, context) {
      const caller = callerOf(context);
      const guardianId = patientIdFromName(request.parent);
      requireGuardianSide(context, caller, guardianId);
      const draft = patientDraftFromProto(request.dependent ?? create(PatientSchema));
      const violations = profileViolations(draft, deps.clock.now(), "dependent");
      if (violations.length > 0 || draft.birthDate === undefined) {
        throw new DomainError("invalid-argument", "INVALID_PROFILE", "The profile is incomplete or invalid.", {
          violations,
        });
      }
      const profile = { ...draft, birthDate: draft.birthDate };
      const { patient, view } = await audited(deps, context, (record) =>
        creation.createDependent(
          caller,
          {
            guardianId,
            profile,
            relationship: relationshipFromProto(request.relationship),
            grants: grantsFromProto(request.grants),
            requestId: request.requestId || undefined,
          },
          record,
        ),
      );
      return { dependent: patientToProto(patient), familyLink: linkToProto(view) };
    },

    async createFamilyLink(request, context) {
      const caller = callerOf(context);
      const guardianId = patientIdFromName(request.parent);
      requireGuardianSide(context, caller, guardianId);
      const link = request.familyLink ?? create(FamilyLinkSchema);
      const view = await audited(deps, context, (record) =>
        creation.invite(
          {
            guardianId,
            dependentId: link.dependent === "" ? undefined : patientIdFromName(link.dependent),
            inviteeEmail: link.inviteeEmail === "" ? undefined : link.inviteeEmail,
            relationship: relationshipFromProto(link.relationship),
            grants: grantsFromProto(link.grants),
            requestId: request.requestId || undefined,
          },
          record,
        ),
      );
      return { familyLink: linkToProto(view) };
    },

    async getFamilyLink(request, context) {
      const { guardianId, linkId } = parseLinkName(request.name);
      return { familyLink: linkToProto(await links.get(callerOf(context), guardianId, linkId)) };
    },

    async listFamilyLinks(request, context) {
      const caller = callerOf(context);
      const patientId = patientIdFromName(request.parent);
      requireGuardianSide(context, caller, patientId);
      const side = sideFromProto(request.role);
      const states = [...new Set(statesFromProto(request.states))].sort();
      // The token is bound to this exact query: replaying it against another is INVALID_ARGUMENT.
      const scope = `familyLinks|${patientId}|${side}|${states.join(",")}`;
      const after = decodePageToken(scope, request.pageToken);
      const pageSize = Math.min(request.pageSize > 0 ? request.pageSize : defaultPageSize, maxPageSize);
      const page = await links.list({
        patientId,
        side,
        states,
        pageSize,
        afterId: after === undefined ? undefined : String(after.id),
      });
      return {
        familyLinks: page.views.map(linkToProto),
        nextPageToken: page.lastId === undefined ? "" : encodePageToken(scope, { id: page.lastId }),
      };
    },

    async updateFamilyLink(request, context) {
      const link = request.familyLink ?? create(FamilyLinkSchema);
      const { guardianId, linkId } = parseLinkName(link.name);
      const requested = request.updateMask?.paths ?? [];
      const paths = requested.length > 0 ? requested : populatedPaths(FamilyLinkSchema, link, updatableFields);
      const expanded = paths.includes("*") ? [...updatableFields] : paths;
      if (expanded.length === 0) throw invalidArgument("update_mask", "names no field to update");
      const unknown = expanded.filter((path) => !updatableFields.has(path));
      if (unknown.length > 0) {
        throw new DomainError("invalid-argument", "INVALID_UPDATE_MASK", "Invalid update_mask.", {
          violations: unknown.map((path) => ({
            field: "update_mask",
            description: `"${path}" is not a field that can be updated`,
          })),
        });
      }
      const changes: LinkChanges = {
        ...(expanded.includes("grants") ? { grants: checkedGrantsOf(link.grants) } : {}),
        ...(expanded.includes("relationship") ? { relationship: checkedRelationshipOf(link.relationship) } : {}),
      };
      const caller = callerOf(context);
      const view = await audited(deps, context, (record) =>
        links.update(caller, guardianId, linkId, changes, link.etag, record),
      );
      return { familyLink: linkToProto(view) };
    },

    async acceptFamilyLink(request, context) {
      const { guardianId, linkId } = parseLinkName(request.name);
      const caller = callerOf(context);
      const view = await audited(deps, context, (record) =>
        links.accept(caller, guardianId, linkId, request.etag, record),
      );
      return { familyLink: linkToProto(view) };
    },

    async declineFamilyLink(request, context) {
      const { guardianId, linkId } = parseLinkName(request.name);
      const caller = callerOf(context);
      const view = await audited(deps, context, (record) => links.decline(caller, guardianId, linkId, record));
      return { familyLink: linkToProto(view) };
    },

    async revokeFamilyLink(request, context) {
      const { guardianId, linkId } = parseLinkName(request.name);
      const caller = callerOf(context);
      const view = await audited(deps, context, (record) =>
        links.revoke(caller, guardianId, linkId, request.reason, request.etag, record),
      );
      return { familyLink: linkToProto(view) };
    },
  };
}

/** The authenticated caller; the pipeline refuses anonymous calls to FamilyService before this runs. */
function callerOf(context: HandlerContext): Caller {
  const principal = context.values.get(principalKey);
  if (principal === undefined) {
    throw new DomainError("unauthenticated", "UNAUTHENTICATED", "Sign in to manage family members.");
  }
  return { name: principal.name, role: principal.role, patientId: principal.patientId };
}

/**
 * Guardian-side methods (`parent` = `patients/{guardian}`): the pipeline lets through
 * only that patient, a proxy it approved, or an admin; checked again here so a
 * wiring mistake cannot open another patient's family.
 */
function requireGuardianSide(context: HandlerContext, caller: Caller, patientId: string): void {
  if (caller.role === "admin") return;
  if (caller.role !== "patient") {
    throw new DomainError("permission-denied", "ROLE_NOT_ALLOWED", "Your role may not call this method.");
  }
  if (caller.patientId === patientId) return;
  const actingFor = context.values.get(actingForKey);
  if (actingFor?.proxy && actingFor.patientId === patientId) return;
  throw notFound("Patient");
}

/** `patients/{guardian}/familyLinks/{link}`; anything else names no link. */
function parseLinkName(name: string): { guardianId: string; linkId: string } {
  const match = /^patients\/([A-Za-z0-9_-]{1,64})\/familyLinks\/([A-Za-z0-9_-]{1,64})$/.exec(name);
  if (match === null) throw notFound(familyLinkResource);
  return { guardianId: match[1] as string, linkId: match[2] as string };
}

function checkedGrantsOf(grants: Parameters<typeof grantsFromProto>[0]) {
  const names = grantsFromProto(grants);
  if (names.length === 0) {
    throw invalidArgument("family_link.grants", "at least one grant is required; revoke the link instead");
  }
  return names as NonNullable<LinkChanges["grants"]>;
}

function checkedRelationshipOf(relationship: Parameters<typeof relationshipFromProto>[0]) {
  const name = relationshipFromProto(relationship);
  if (name === undefined) throw invalidArgument("family_link.relationship", "a relationship is required");
  return name;
}

/**
 * Runs a use case with a hook that records the facts of its change as audit entries
 * inside the change's transaction: the actor from the principal, the call's rpc,
 * request id and client address. Once the change has committed, it tells the
 * pipeline (CallAudit) that this call is recorded, so it is not recorded twice.
 */
async function audited<T>(
  deps: FamilyServiceDeps,
  context: HandlerContext,
  work: (record: RecordAudit) => Promise<T>,
): Promise<T> {
  let recorded = false;
  const result = await work(async (em, facts) => {
    if (deps.audit === undefined || facts.length === 0) return;
    await deps.audit.recordWithin(
      em,
      facts.map((fact) => auditDraft(context, fact)),
    );
    recorded = true;
  });
  const callAudit = context.values.get(callAuditKey);
  if (recorded && callAudit !== undefined) callAudit.recorded = true;
  return result;
}

function auditDraft(context: HandlerContext, fact: LinkAuditFact): AuditEntryDraft {
  const principal = context.values.get(principalKey);
  const proxy = context.values.get(actingForKey)?.proxy ?? false;
  const system = fact.bySystem === true || principal === undefined;
  return {
    actor: system ? "" : principal.name,
    actorRole: system ? ActorRole.SYSTEM : proxy ? ActorRole.GUARDIAN : actorRoleOf(principal.role),
    subjectPatientId: fact.subjectPatientId,
    proxy: !system && proxy,
    action: fact.action === "create" ? AuditAction.CREATE : AuditAction.UPDATE,
    resource: fact.resource,
    outcome: AuditOutcome.SUCCESS,
    rpc: methodPath(context.method),
    requestId: context.values.get(requestIdKey),
    clientAddress: context.values.get(clientAddressKey),
    reason: "",
  };
}
