import type { EntityManager } from "@mikro-orm/postgresql";
import type { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";

/**
 * A notification another bounded context asks for (a booking change, a reminder, an
 * emergency update). The notifications context stores it in the recipient's
 * notification store, wakes the recipient's streams on every replica, and delivers
 * it on the channels the recipient's preferences allow.
 */
export interface NotificationDraft {
  /** The patient whose stream, store and channels receive it. */
  readonly recipientPatientId: string;
  /** The patient it is about, when that is not the recipient (a guardian told about a dependent). */
  readonly aboutPatientId?: string;
  readonly category: NotificationCategory;
  readonly priority: NotificationPriority;
  /** Short text for the patient; the producer keeps it free of clinical detail (it may travel by SMS). */
  readonly title: string;
  readonly body: string;
  /** The resource it concerns, e.g. `patients/{p}/consultations/{c}`. */
  readonly subjectResource?: string;
  /**
   * Makes the draft idempotent per recipient: a second draft with the same recipient
   * and key is dropped (a reminder sent once even when two replicas find it due).
   */
  readonly dedupeKey?: string;
  /** After this the notification is no longer worth delivering on a channel. */
  readonly expireTime?: Date;
}

/** Publishes the stored notifications to live streams; call it after the transaction committed. */
export type AnnounceAfterCommit = () => void;

/** What producers use to notify patients. */
export interface Notifier {
  /**
   * Stores the drafts inside `em`'s open transaction, so a notification exists exactly
   * when the change it reports committed. Returns what to call after the commit to wake
   * the recipients' streams (a rollback simply never calls it).
   */
  recordWithin(em: EntityManager, drafts: readonly NotificationDraft[]): Promise<AnnounceAfterCommit>;
  /** Stores the drafts in a transaction of its own and announces them. */
  notify(drafts: readonly NotificationDraft[]): Promise<void>;
}

/** Patients' reminder offsets, from their notification preferences (defaults when they set none). */
export interface ReminderPreferences {
  /** Seconds before the start, per patient id; every id asked for is in the answer. */
  reminderOffsetsFor(patientIds: readonly string[]): Promise<ReadonlyMap<string, readonly number[]>>;
}
