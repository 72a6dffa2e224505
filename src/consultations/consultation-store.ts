import type { EntityManager } from "@mikro-orm/postgresql";
import type { CallAudit } from "../audit/call-audit.ts";
import type { NotificationDraft, Notifier } from "../notifications/notifier.ts";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, notFound } from "../shared/domain-errors.ts";
import { type Consultation, consultationFromJson, consultationToJson } from "./consultation.ts";
import { type ConsultationNews, consultationDrafts } from "./consultation-notifications.ts";
import type { ConsultationChanges, ConsultationRepository } from "./consultation-repository.ts";
import type { StatusCache } from "./status-cache.ts";

/** What a change decided, given the locked current row. */
export interface Decision {
  readonly changes: ConsultationChanges;
  /** What to tell the patient (and the guardian who acted), if anything. */
  readonly news?: ConsultationNews;
  readonly guardianPatientId?: string;
  /** More writes in the same transaction (a summary row), after the row's update. */
  readonly alsoWithin?: (em: EntityManager, updated: Consultation) => Promise<void>;
}

/** What the store needs. */
export interface ConsultationStoreDeps {
  readonly repository: ConsultationRepository;
  readonly cache: StatusCache;
  readonly notifier: Notifier;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Reads consultations through the status cache and changes them in one transaction
 * with their notification and audit entry. The cache is told about a change twice:
 * inside the transaction before the commit (so nothing read before the commit can be
 * cached after it: status-cache.ts), and after the commit with the new row. If the
 * first telling fails the change does not happen: a change the cache might not know
 * about could leave a stale status there.
 */
export class ConsultationStore {
  readonly #deps: ConsultationStoreDeps;

  constructor(deps: ConsultationStoreDeps) {
    this.#deps = deps;
  }

  get repository(): ConsultationRepository {
    return this.#deps.repository;
  }

  /** The consultation of this patient; NOT_FOUND when there is none (or it is another patient's). */
  async read(patientId: string, id: string): Promise<Consultation> {
    const cached = await this.#deps.cache.get(id).catch(() => undefined);
    const consultation = cached === undefined ? await this.#load(id) : consultationFromJson(cached);
    if (consultation === undefined || consultation.patientId !== patientId) throw notFound("Consultation");
    return consultation;
  }

  /**
   * Locks the consultation, lets `decide` check the rules (it may call the Doctor
   * Service while the row is locked, so no other change interleaves) and applies what
   * it decided with the notification and `audit`'s entry, all in one transaction.
   * `decide` answers undefined when there is nothing to change.
   */
  async change(
    patientId: string,
    id: string,
    audit: CallAudit | undefined,
    decide: (current: Consultation, em: EntityManager) => Promise<Decision | undefined>,
  ): Promise<Consultation> {
    let announce: (() => void) | undefined;
    const updated = await this.#deps.repository.fork().transactional(async (em) => {
      const current = await this.#deps.repository.lock(em, id);
      if (current === undefined || current.patientId !== patientId) throw notFound("Consultation");
      const decision = await decide(current, em);
      // Nothing to change (a repeated confirmation): no version, no notification, no audit entry.
      if (decision === undefined) return current;
      const applied = await this.#apply(em, current, decision, audit);
      if (applied === undefined) throw new Error("a locked consultation changed under its lock");
      announce = applied.announce;
      return applied.next;
    });
    await this.afterCommit(updated, announce);
    return updated;
  }

  /** Writes a decision about `current` in `em`'s transaction; undefined when the row is at another version. */
  async #apply(
    em: EntityManager,
    current: Consultation,
    decision: Decision,
    audit: CallAudit | undefined,
  ): Promise<{ next: Consultation; announce: (() => void) | undefined } | undefined> {
    const { repository, clock } = this.#deps;
    let next = await repository.update(em, current.id, current.version, decision.changes, clock.now());
    if (next === undefined) return undefined;
    // The marker must be in the cache before the commit; it does not have to wait for the other writes.
    const marked = this.invalidateWithin(current.id, next.version);
    marked.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
    if (decision.alsoWithin !== undefined) {
      await decision.alsoWithin(em, next);
      next = (await repository.get(current.id, em)) ?? next;
    }
    const announce = await this.notifyWithin(em, next, decision.news, decision.guardianPatientId);
    await audit?.within(em);
    await marked;
    return { next, announce };
  }

  /** Records the notification of a change inside its transaction; what to call after the commit. */
  async notifyWithin(
    em: EntityManager,
    consultation: Consultation,
    news: ConsultationNews | undefined,
    guardianPatientId: string | undefined,
  ): Promise<(() => void) | undefined> {
    if (news === undefined) return undefined;
    return this.#deps.notifier.recordWithin(em, consultationDrafts(consultation, news, guardianPatientId));
  }

  /** `notifyWithin` for several changes at once (one call of the notifier); what to call after the commit. */
  async notifyManyWithin(
    em: EntityManager,
    changes: readonly { consultation: Consultation; news: ConsultationNews; guardianPatientId: string | undefined }[],
  ): Promise<(() => void) | undefined> {
    if (changes.length === 0) return undefined;
    return this.#deps.notifier.recordWithin(
      em,
      changes.flatMap((change) => consultationDrafts(change.consultation, change.news, change.guardianPatientId)),
    );
  }

  /** Records a reminder inside the transaction that records it as sent. */
  notifyReminderWithin(em: EntityManager, draft: NotificationDraft): Promise<() => void> {
    return this.#deps.notifier.recordWithin(em, [draft]);
  }

  /** The cache step before a commit; failing it fails the change. */
  async invalidateWithin(id: string, version: number): Promise<void> {
    try {
      await this.#deps.cache.invalidate(id, version);
    } catch {
      throw new DomainError(
        "unavailable",
        "STATUS_CACHE_UNAVAILABLE",
        "The service cannot record this change now. Please retry shortly.",
        { retryAfterSeconds: 2 },
      );
    }
  }

  /** After a commit: the new row into the cache (by version, so never over a newer one), then the live streams. */
  async afterCommit(consultation: Consultation, announce: (() => void) | undefined): Promise<void> {
    await this.#deps.cache
      .populate(consultation.id, consultation.version, consultationToJson(consultation))
      .catch((error: unknown) => this.#warn(error, "status cache refresh after a commit failed"));
    this.announce(announce);
  }

  /** After a commit: tells the live streams (what `notifyWithin` handed back); never throws. */
  announce(announce: (() => void) | undefined): void {
    try {
      announce?.();
    } catch (error) {
      this.#warn(error, "announcing a consultation notification failed");
    }
  }

  async #load(id: string): Promise<Consultation | undefined> {
    const consultation = await this.#deps.repository.get(id);
    if (consultation !== undefined) {
      await this.#deps.cache
        .populate(id, consultation.version, consultationToJson(consultation))
        .catch(() => undefined);
    }
    return consultation;
  }

  #warn(error: unknown, message: string): void {
    this.#deps.logger.warn({ err: { type: error instanceof Error ? error.constructor.name : typeof error } }, message);
  }
}
