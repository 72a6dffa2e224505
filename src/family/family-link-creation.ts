import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Patient, PatientFields } from "../patients/patient.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import { isUuid, uuidV7 } from "../shared/uuid-v7.ts";
import type { Caller, FamilyGrantName, FamilyLink, Relationship } from "./family-link.ts";
import type { FamilyLinkRepository } from "./family-link-repository.ts";
import { actorOf, type LinkAuditFact, type LinkView, type LinkViews, type RecordAudit } from "./family-link-views.ts";
import {
  checkedGrants,
  checkedRelationship,
  comingOfAge,
  familyLinkName,
  isMinorAt,
  requestIdReused,
} from "./family-rules.ts";

/** The profile operations CreateDependent needs (PatientRepository's public API). */
export interface DependentProfiles {
  create(fields: PatientFields, requestId?: string): Promise<Patient>;
  get(id: string): Promise<Patient>;
}

/**
 * CreateDependent and CreateFamilyLink: new links, idempotent by request id (AIP-155),
 * each written with its audit facts (and, for a dependent, their profile) in one
 * transaction.
 */
export class FamilyLinkCreation {
  readonly #links: FamilyLinkRepository;
  readonly #views: LinkViews;
  readonly #clock: Clock;
  readonly #profiles: Pick<DependentProfiles, "get">;
  readonly #profilesIn: (em: EntityManager) => Pick<DependentProfiles, "create">;
  readonly #emailIndex: (email: string) => string;

  constructor(options: {
    links: FamilyLinkRepository;
    views: LinkViews;
    clock: Clock;
    /** Reads of patient profiles, outside any transaction. */
    profiles: Pick<DependentProfiles, "get">;
    /** Patient profiles working in the given EntityManager (the transaction of CreateDependent). */
    profilesIn: (em: EntityManager) => Pick<DependentProfiles, "create">;
    /**
     * The blind index of an email address (patients.email_index): an invitation by email
     * stores it, never the address, and finds its invitee by it.
     */
    emailIndex: (email: string) => string;
  }) {
    this.#links = options.links;
    this.#views = options.views;
    this.#clock = options.clock;
    this.#profiles = options.profiles;
    this.#profilesIn = options.profilesIn;
    this.#emailIndex = options.emailIndex;
  }

  /**
   * Creates a minor's profile and an ACTIVE link to it with the guardian's consent
   * (parental authority; recorded by an admin when an admin calls), ending at the age
   * of majority. An adult must be invited instead: FAILED_PRECONDITION.
   */
  async createDependent(
    caller: Caller,
    input: {
      guardianId: string;
      profile: PatientFields & { birthDate: NonNullable<PatientFields["birthDate"]> };
      relationship: Relationship | undefined;
      grants: readonly (FamilyGrantName | undefined)[];
      requestId: string | undefined;
    },
    audit: RecordAudit,
  ): Promise<{ patient: Patient; view: LinkView }> {
    const relationship = checkedRelationship(input.relationship, "relationship");
    const grants = checkedGrants(input.grants, "grants");
    const requestId = checkedRequestId(input.requestId);
    if (requestId !== undefined) {
      const done = await this.#links.findByRequestId(requestId);
      if (done !== undefined) return this.#replayDependent(done, input.guardianId);
    }
    const now = this.#clock.now();
    const birthDate = calendarText(input.profile.birthDate);
    if (!isMinorAt(birthDate, now, this.#views.ageOfMajority)) {
      throw new DomainError(
        "failed-precondition",
        "DEPENDENT_NOT_A_MINOR",
        "Only a minor's profile can be created by a guardian; invite an adult to link their own profile instead.",
        { violations: [{ field: "dependent.birth_date", description: "the dependent is not a minor" }] },
      );
    }
    return this.#links.fork().transactional(async (em) => {
      if ((await this.#links.patientFacts(input.guardianId, em)) === undefined) throw notFound("Patient");
      const profiles = this.#profilesIn(em);
      // Its own request id, derived from the link's: a CreatePatient request id can never replay into a dependent.
      const patient = await profiles.create(input.profile, requestId && derivedRequestId("dependent", requestId));
      const id = uuidV7(now.getTime());
      const inserted = await this.#links.insert(em, {
        id,
        guardianId: input.guardianId,
        dependentId: patient.id,
        inviteeEmailHash: undefined,
        relationship,
        grants,
        state: "active",
        consent: {
          method: caller.role === "admin" ? "admin_recorded" : "guardian_for_minor",
          actor: actorOf(caller, "guardian"),
          time: now,
        },
        endTime: comingOfAge(birthDate, this.#views.ageOfMajority),
        createRequestId: requestId,
        now,
      });
      if (!inserted) {
        const done = await this.#links.findByRequestId(requestId as string, em);
        if (done === undefined) throw new Error("family link insert skipped without a link for its request id");
        return this.#replayDependent(done, input.guardianId);
      }
      await audit(em, [
        { action: "create", resource: `patients/${patient.id}`, subjectPatientId: patient.id },
        { action: "create", resource: familyLinkName(input.guardianId, id), subjectPatientId: input.guardianId },
      ]);
      return { patient, view: this.#views.view(await this.#views.reread(em, input.guardianId, id), now) };
    });
  }

  /**
   * Invites an existing patient, by resource name or by email, to become a dependent:
   * PENDING_CONSENT. By email, the answer is the same whether or not the address
   * belongs to a patient: the invitation is matched to its invitee only when they read it.
   */
  async invite(
    input: {
      guardianId: string;
      dependentId: string | undefined;
      inviteeEmail: string | undefined;
      relationship: Relationship | undefined;
      grants: readonly (FamilyGrantName | undefined)[];
      requestId: string | undefined;
    },
    audit: RecordAudit,
  ): Promise<LinkView> {
    if ((input.dependentId === undefined) === (input.inviteeEmail === undefined)) {
      throw invalidArgument("family_link", "exactly one of dependent or invitee_email must be set");
    }
    const relationship = checkedRelationship(input.relationship, "family_link.relationship");
    const grants = checkedGrants(input.grants, "family_link.grants");
    const requestId = checkedRequestId(input.requestId);
    const emailHash = input.inviteeEmail === undefined ? undefined : this.#emailIndex(input.inviteeEmail);
    const sameRequest = (done: FamilyLink) =>
      done.guardianId === input.guardianId &&
      done.consent?.method !== "guardian_for_minor" &&
      done.consent?.method !== "admin_recorded" &&
      (emailHash === undefined
        ? done.inviteeEmailHash === undefined && done.dependentId === input.dependentId
        : done.inviteeEmailHash === emailHash);
    if (requestId !== undefined) {
      const done = await this.#links.findByRequestId(requestId);
      if (done !== undefined) {
        if (!sameRequest(done)) throw requestIdReused();
        return this.#views.view(done, this.#clock.now());
      }
    }
    const now = this.#clock.now();
    return this.#links.fork().transactional(async (em) => {
      const guardian = await this.#links.patientFacts(input.guardianId, em);
      if (guardian === undefined) throw notFound("Patient");
      const facts: LinkAuditFact[] = [];
      if (input.dependentId !== undefined) {
        if (input.dependentId === input.guardianId) {
          throw invalidArgument("family_link.dependent", "a patient cannot be their own dependent");
        }
        if ((await this.#links.patientFacts(input.dependentId, em)) === undefined) throw notFound("Patient");
        facts.push(...(await this.#views.expireStale(em, input.guardianId, input.dependentId, now)));
      } else if (emailHash === guardian.emailIndex) {
        throw invalidArgument("family_link.invitee_email", "a patient cannot be their own dependent");
      }
      const id = uuidV7(now.getTime());
      const inserted = await this.#links.insert(em, {
        id,
        guardianId: input.guardianId,
        dependentId: input.dependentId,
        inviteeEmailHash: emailHash,
        relationship,
        grants,
        state: "pending_consent",
        consent: undefined,
        endTime: undefined,
        createRequestId: requestId,
        now,
      });
      if (!inserted) {
        const done = await this.#links.findByRequestId(requestId as string, em);
        if (done === undefined || !sameRequest(done)) throw requestIdReused();
        return this.#views.view(done, now);
      }
      facts.push({
        action: "create",
        resource: familyLinkName(input.guardianId, id),
        subjectPatientId: input.guardianId,
      });
      await audit(em, facts);
      return this.#views.view(await this.#views.reread(em, input.guardianId, id), now);
    });
  }

  async #replayDependent(done: FamilyLink, guardianId: string): Promise<{ patient: Patient; view: LinkView }> {
    const madeByCreateDependent =
      done.consent?.method === "guardian_for_minor" || done.consent?.method === "admin_recorded";
    if (done.guardianId !== guardianId || done.dependentId === undefined || !madeByCreateDependent) {
      throw requestIdReused();
    }
    // The profile as it is now (committed: this replay lost the race to, or came after, the first create).
    const patient = await this.#profiles.get(done.dependentId);
    return { patient, view: this.#views.view(done, this.#clock.now()) };
  }
}

function checkedRequestId(requestId: string | undefined): string | undefined {
  if (requestId === undefined || requestId === "") return undefined;
  if (!isUuid(requestId)) throw invalidArgument("request_id", "must be a UUID");
  return requestId.toLowerCase();
}

/**
 * A UUID (version 8, RFC 9562) derived from a request id and a purpose, so one client
 * request id can key several rows without colliding with ids of other requests.
 */
function derivedRequestId(purpose: string, requestId: string): string {
  const hex = createHash("sha256").update(`telemed.family.${purpose}:${requestId}`).digest("hex");
  const variant = ((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function calendarText(date: { year: number; month: number; day: number }): string {
  const pad = (value: number, width: number) => String(value).padStart(width, "0");
  return `${pad(date.year, 4)}-${pad(date.month, 2)}-${pad(date.day, 2)}`;
}
