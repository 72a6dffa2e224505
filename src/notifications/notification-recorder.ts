import type { EntityManager } from "@mikro-orm/postgresql";
import type { Orm } from "../db/orm.ts";
import type { Clock } from "../shared/clock.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import type { NotificationFanout, StoreHead } from "./notification-fanout.ts";
import { categoryFromProto, priorityFromProto } from "./notification-mapping.ts";
import { planDeliveries } from "./notification-preferences.ts";
import type { NewNotification, NotificationStore } from "./notification-store.ts";
import type { AnnounceAfterCommit, NotificationDraft, Notifier } from "./notifier.ts";
import type { PreferenceStore } from "./preference-store.ts";

/** What the recorder needs. */
export interface RecorderDeps {
  readonly orm: Orm;
  readonly store: NotificationStore;
  readonly preferences: PreferenceStore;
  readonly fanout: NotificationFanout;
  readonly clock: Clock;
  readonly defaultTimeZone: string;
  /** Runs after a commit that queued channel deliveries (wakes the dispatcher early). */
  readonly deliveriesQueued: () => void;
}

/**
 * The Notifier other contexts use. Inside the producer's transaction it stores each
 * draft in its recipient's store, plans its channel deliveries from the recipient's
 * preferences (queued in the same transaction, so a committed notification is always
 * delivered and a rolled-back one never is), and hands back what to run after the
 * commit: the poke to every replica's streams and a nudge to the dispatcher.
 */
export class NotificationRecorder implements Notifier {
  readonly #deps: RecorderDeps;

  constructor(deps: RecorderDeps) {
    this.#deps = deps;
  }

  async recordWithin(em: EntityManager, drafts: readonly NotificationDraft[]): Promise<AnnounceAfterCommit> {
    const { store, preferences, clock, defaultTimeZone } = this.#deps;
    const now = clock.now();
    const byRecipient = new Map<string, NewNotification[]>();
    for (const draft of drafts) {
      const item = checked(draft);
      const list = byRecipient.get(item.recipientId) ?? [];
      list.push(item);
      byRecipient.set(item.recipientId, list);
    }
    // Head rows are locked in one global order, so two producers cannot deadlock.
    const recipients = [...byRecipient.keys()].sort();
    const preferencesOf = await preferences.getMany(recipients, em);
    const heads: StoreHead[] = [];
    const plans: { notificationId: string; recipientId: string; plan: ReturnType<typeof planDeliveries> }[] = [];
    // Every recipient's head and notifications in two statements (a producer may record for many).
    const insertedBy = await store.insertManyWithin(
      em,
      new Map(recipients.map((recipientId) => [recipientId, byRecipient.get(recipientId) ?? []])),
      now,
    );
    for (const recipientId of recipients) {
      const inserted = insertedBy.get(recipientId) ?? [];
      if (inserted.length === 0) continue;
      heads.push({ recipientId, sequence: Math.max(...inserted.map((row) => row.sequence)) });
      const recipientPreferences = preferencesOf.get(recipientId);
      for (const row of inserted) {
        if (recipientPreferences === undefined) continue;
        plans.push({
          notificationId: row.id,
          recipientId,
          plan: planDeliveries(row.input, recipientPreferences, now, defaultTimeZone),
        });
      }
    }
    await store.insertDeliveriesWithin(em, plans, now);
    const queued = plans.some(({ plan }) => plan.some((channel) => channel.state !== "suppressed"));
    return () => {
      this.#deps.fanout.announce(heads);
      if (queued) this.#deps.deliveriesQueued();
    };
  }

  async notify(drafts: readonly NotificationDraft[]): Promise<void> {
    const announce = await this.#deps.orm.em.fork().transactional((em) => this.recordWithin(em, drafts));
    announce();
  }
}

/**
 * A draft in the store's vocabulary. A bad draft is a producer's bug, not the
 * patient's: it throws a plain Error (INTERNAL), loudly, instead of storing a
 * notification nobody can read or deliver.
 */
function checked(draft: NotificationDraft): NewNotification {
  const category = categoryFromProto.get(draft.category);
  const priority = priorityFromProto.get(draft.priority);
  const problems: string[] = [];
  if (!isUuid(draft.recipientPatientId)) problems.push("recipientPatientId is not a patient id");
  if (draft.aboutPatientId !== undefined && !isUuid(draft.aboutPatientId))
    problems.push("aboutPatientId is not a patient id");
  if (category === undefined) problems.push("category is unset or unknown");
  if (priority === undefined) problems.push("priority is unknown");
  if (draft.title.trim() === "" || draft.title.length > 200) problems.push("title must have 1 to 200 characters");
  if (draft.body.trim() === "" || draft.body.length > 2000) problems.push("body must have 1 to 2000 characters");
  if ((draft.subjectResource?.length ?? 0) > 300) problems.push("subjectResource is longer than 300 characters");
  if (draft.dedupeKey !== undefined && !/^[A-Za-z0-9:._/-]{1,200}$/.test(draft.dedupeKey)) {
    problems.push("dedupeKey must be 1 to 200 of A-Z a-z 0-9 : . _ / -");
  }
  if (problems.length > 0 || category === undefined || priority === undefined) {
    throw new Error(`invalid notification draft: ${problems.join("; ")}`);
  }
  return {
    recipientId: draft.recipientPatientId.toLowerCase(),
    aboutPatientId: draft.aboutPatientId?.toLowerCase(),
    category,
    priority,
    title: draft.title,
    body: draft.body,
    subjectResource: draft.subjectResource,
    dedupeKey: draft.dedupeKey,
    expireTime: draft.expireTime,
  };
}
