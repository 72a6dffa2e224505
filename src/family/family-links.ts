import type { EntityManager } from "@mikro-orm/postgresql";
import type { Clock } from "../shared/clock.ts";
import { etagMismatch, notFound } from "../shared/domain-errors.ts";
import type { Caller, CallerSide, FamilyLink, LinkState } from "./family-link.ts";
import type { FamilyLinkRepository, LinkUpdate } from "./family-link-repository.ts";
import { actorOf, type LinkAuditFact, type LinkView, type LinkViews, type RecordAudit } from "./family-link-views.ts";
import {
  comingOfAge,
  familyLinkName,
  familyLinkResource,
  isMinorAt,
  type LinkChanges,
  requireAllowedChange,
  requireEtag,
  requireInvitee,
  requireLive,
  requirePending,
  requireReader,
  sideOf,
} from "./family-rules.ts";

/**
 * The use cases of FamilyService on existing links, in domain terms: who may see and
 * do what to a link, the transitions (AIP-216), and every change with its audit facts
 * in one transaction. Creating links is FamilyLinkCreation's; handlers
 * (family-handlers.ts) only translate protobuf.
 */
export class FamilyLinks {
  readonly #links: FamilyLinkRepository;
  readonly #views: LinkViews;
  readonly #clock: Clock;

  constructor(options: { links: FamilyLinkRepository; views: LinkViews; clock: Clock }) {
    this.#links = options.links;
    this.#views = options.views;
    this.#clock = options.clock;
  }

  /** Reads a link: its guardian, its dependent (or invitee) and admins; NOT_FOUND for anyone else. */
  async get(caller: Caller, guardianId: string, linkId: string): Promise<LinkView> {
    const found = await this.#links.find(guardianId, linkId, caller.patientId);
    if (found === undefined) throw notFound(familyLinkResource);
    requireReader(sideOf(found.link, caller, found.callerIsInvitee));
    return this.#views.view(found.link, this.#clock.now());
  }

  /** A page of a patient's links as guardian or as dependent (invitations by email included), newest first. */
  async list(query: {
    patientId: string;
    side: "guardian" | "dependent";
    states: readonly LinkState[];
    pageSize: number;
    afterId: string | undefined;
  }): Promise<{ views: LinkView[]; lastId: string | undefined }> {
    const now = this.#clock.now();
    const page = await this.#links.list({ ...query, now, lapsedBefore: this.#views.lapsedBefore(now) });
    return { views: page.links.map((link) => this.#views.view(link, now)), lastId: page.lastId };
  }

  /** Changes grants and/or relationship: the guardian or an admin; the dependent may only narrow grants. */
  async update(
    caller: Caller,
    guardianId: string,
    linkId: string,
    changes: LinkChanges,
    etag: string,
    audit: RecordAudit,
  ): Promise<LinkView> {
    return this.#change(caller, guardianId, linkId, audit, (link, side, state) => {
      requireAllowedChange(side, link, changes);
      requireEtag(link, etag);
      requireLive(state);
      return {
        ...(changes.relationship === undefined ? {} : { relationship: changes.relationship }),
        ...(changes.grants === undefined ? {} : { grants: changes.grants }),
      };
    });
  }

  /** The invited dependent accepts: PENDING_CONSENT -> ACTIVE; a minor's link ends at the age of majority. */
  async accept(caller: Caller, guardianId: string, linkId: string, etag: string, audit: RecordAudit) {
    return this.#change(caller, guardianId, linkId, audit, async (link, side, state, em, now) => {
      requireInvitee(side);
      requireEtag(link, etag);
      requirePending(state);
      const dependentId = caller.patientId as string;
      const dependent = await this.#links.patientFacts(dependentId, em);
      if (dependent === undefined) throw notFound(familyLinkResource);
      const expired =
        link.dependentId === undefined ? await this.#views.expireStale(em, guardianId, dependentId, now) : [];
      const minor = isMinorAt(dependent.birthDate, now, this.#views.ageOfMajority);
      return {
        update: {
          dependentId,
          state: "active",
          consent: { method: "dependent_accepted", actor: actorOf(caller, "self"), time: now },
          endTime: minor ? comingOfAge(dependent.birthDate, this.#views.ageOfMajority) : undefined,
        },
        facts: expired,
      };
    });
  }

  /** The invited dependent declines: PENDING_CONSENT -> DECLINED. */
  async decline(caller: Caller, guardianId: string, linkId: string, audit: RecordAudit): Promise<LinkView> {
    return this.#change(caller, guardianId, linkId, audit, (_link, side, state) => {
      requireInvitee(side);
      requirePending(state);
      return { dependentId: caller.patientId as string, state: "declined" };
    });
  }

  /** The guardian, the dependent or an admin revokes a live link; FamilyAccess sees it on the next call. */
  async revoke(
    caller: Caller,
    guardianId: string,
    linkId: string,
    reason: string,
    etag: string,
    audit: RecordAudit,
  ): Promise<LinkView> {
    return this.#change(caller, guardianId, linkId, audit, (link, side, state, _em, now) => {
      requireReader(side);
      requireEtag(link, etag);
      requireLive(state);
      const revocation = { actor: actorOf(caller, "self"), reason, time: now };
      // An invitee who revokes an invitation by email is recorded as its dependent, and stays anonymous to the guardian.
      if (side === "dependent" && link.dependentId === undefined) {
        return { dependentId: caller.patientId as string, state: "revoked", revocation };
      }
      return { state: "revoked", revocation };
    });
  }

  /**
   * One change of one link in a transaction: lock the row, let `decide` check the
   * caller, etag and state and say what changes, write it, record the audit facts,
   * and return the link as it is now.
   */
  async #change(
    caller: Caller,
    guardianId: string,
    linkId: string,
    audit: RecordAudit,
    decide: (
      link: FamilyLink,
      side: CallerSide,
      state: LinkState,
      em: EntityManager,
      now: Date,
    ) =>
      | LinkUpdate
      | { update: LinkUpdate; facts: LinkAuditFact[] }
      | Promise<{ update: LinkUpdate; facts: LinkAuditFact[] }>,
  ): Promise<LinkView> {
    const now = this.#clock.now();
    return this.#links.fork().transactional(async (em) => {
      const found = await this.#links.find(guardianId, linkId, caller.patientId, { em, lock: true });
      if (found === undefined) throw notFound(familyLinkResource);
      const { link } = found;
      const side = sideOf(link, caller, found.callerIsInvitee);
      const decided = await decide(link, side, this.#views.stateAt(link, now), em, now);
      const { update, facts } = "update" in decided ? decided : { update: decided, facts: [] };
      if (!(await this.#links.update(em, link.id, link.version, update, now))) throw etagMismatch(familyLinkResource);
      const subject = update.dependentId ?? link.dependentId ?? link.guardianId;
      await audit(em, [
        ...facts,
        { action: "update", resource: familyLinkName(guardianId, link.id), subjectPatientId: subject },
      ]);
      return this.#views.view(await this.#views.reread(em, guardianId, link.id), now);
    });
  }
}
