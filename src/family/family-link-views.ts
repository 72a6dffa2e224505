import type { EntityManager } from "@mikro-orm/postgresql";
import type { Caller, FamilyLink, LinkActor, LinkState } from "./family-link.ts";
import type { FamilyLinkRepository } from "./family-link-repository.ts";
import { effectiveState, familyLinkName, isMinorAt } from "./family-rules.ts";

/** A link as one caller sees it at one moment. */
export interface LinkView {
  readonly link: FamilyLink;
  /** The state at read time (EXPIRED once the end time or the invitation's lifetime has passed). */
  readonly state: LinkState;
  readonly dependentIsMinor: boolean;
  /** False until consent exists: the response must not name whom an invitation reached. */
  readonly dependentVisible: boolean;
}

/** One change to record in the audit log, inside the change's transaction. */
export interface LinkAuditFact {
  readonly action: "create" | "update";
  /** `patients/{id}` or `patients/{guardian}/familyLinks/{id}`. */
  readonly resource: string;
  readonly subjectPatientId: string | undefined;
  /** A change the service made by itself (a stale link stored as EXPIRED), not the caller. */
  readonly bySystem?: boolean;
}

/** Writes audit facts within `em`'s transaction; a no-op where no audit log is configured. */
export type RecordAudit = (em: EntityManager, facts: readonly LinkAuditFact[]) => Promise<void>;

const dayMs = 86_400_000;

/**
 * How links read at a moment, shared by the creating and the changing use cases:
 * the age of majority and the invitations' lifetime decide what a stored link
 * reads as (family-rules.ts `effectiveState`), and when a stale link is stored as
 * EXPIRED to free its pair.
 */
export class LinkViews {
  readonly #links: FamilyLinkRepository;
  readonly #ageOfMajority: number;
  readonly #lifetimeMs: number;

  constructor(links: FamilyLinkRepository, ageOfMajority: number, invitationLifetimeDays: number) {
    this.#links = links;
    this.#ageOfMajority = ageOfMajority;
    this.#lifetimeMs = invitationLifetimeDays * dayMs;
  }

  get ageOfMajority(): number {
    return this.#ageOfMajority;
  }

  /** What `link` reads as at `now`. */
  stateAt(link: FamilyLink, now: Date): LinkState {
    return effectiveState(link, now, this.#lifetimeMs);
  }

  /** Invitations created at or before this moment have lapsed at `now`. */
  lapsedBefore(now: Date): Date {
    return new Date(now.getTime() - this.#lifetimeMs);
  }

  view(link: FamilyLink, now: Date): LinkView {
    return {
      link,
      state: this.stateAt(link, now),
      dependentIsMinor: link.dependent !== undefined && isMinorAt(link.dependent.birthDate, now, this.#ageOfMajority),
      dependentVisible: link.consent !== undefined && link.dependent !== undefined,
    };
  }

  /** A link written in `em`'s transaction, as stored now (with its dependent's profile). */
  async reread(em: EntityManager, guardianId: string, id: string): Promise<FamilyLink> {
    const found = await this.#links.find(guardianId, id, undefined, { em });
    if (found === undefined) throw new Error("a family link written in this transaction cannot be read back");
    return found.link;
  }

  /** Stores EXPIRED on the pair's links that only read as expired, so a new link may take the pair. */
  async expireStale(em: EntityManager, guardianId: string, dependentId: string, now: Date): Promise<LinkAuditFact[]> {
    const ids = await this.#links.expireStale(em, guardianId, dependentId, now, this.lapsedBefore(now));
    return ids.map((id) => ({
      action: "update",
      resource: familyLinkName(guardianId, id),
      subjectPatientId: dependentId,
      bySystem: true,
    }));
  }
}

/** The actor of a change: a patient acting for themselves, or as guardian (consent for a minor). */
export function actorOf(caller: Caller, as: "self" | "guardian"): LinkActor {
  if (caller.role === "patient") return { principal: caller.name, role: as === "guardian" ? "guardian" : "patient" };
  return { principal: caller.name, role: caller.role };
}
