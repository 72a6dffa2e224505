import { defineEntity, p } from "@mikro-orm/core";
import { categoryNames, channelNames, deliveryStates, priorityNames } from "./notification.ts";

/**
 * The notifications context's tables. The schema lives here and in
 * Migration20261128150100_create_notifications (test/db/schema-drift.test.ts keeps them
 * in step). Rows are read and written with hand-written SQL (notification-store.ts,
 * delivery-queue.ts, preference-store.ts), never through the unit of work.
 */

/**
 * One row per recipient: the last sequence handed out. A transaction that stores
 * notifications upserts this row first and holds its lock until commit, so for one
 * recipient sequences commit in order: once a stream has read sequence n, no
 * transaction can still commit a smaller one. That is what lets a cursor be a plain
 * "sequence > n" without ever skipping a notification.
 */
export const NotificationHeadEntity = defineEntity({
  name: "NotificationHead",
  tableName: "notification_heads",
  properties: {
    recipientId: p.uuid().primary(),
    lastSequence: p.bigint("number"),
    updatedAt: p.datetime(3),
  },
});

/**
 * Each patient's notifications. `sequence` is the stream position (unique per
 * recipient, gaps allowed when a duplicate is dropped); `dedupe_key` makes a draft
 * idempotent per recipient (`insert … on conflict do nothing`). No foreign key to
 * `patients`: a notification outlives nothing it must be deleted with, and producers
 * record it inside their own transactions without locking the profile row.
 */
export const NotificationEntity = defineEntity({
  name: "Notification",
  tableName: "notifications",
  properties: {
    id: p.uuid().primary(),
    recipientId: p.uuid(),
    sequence: p.bigint("number"),
    aboutPatientId: p.uuid().nullable(),
    category: p.enum(categoryNames),
    priority: p.enum(priorityNames),
    title: p.string().length(200),
    body: p.string().length(2000),
    subjectResource: p.string().length(300).nullable(),
    dedupeKey: p.string().length(200).nullable(),
    expireAt: p.datetime(3).nullable(),
    createdAt: p.datetime(3),
    readAt: p.datetime(3).nullable(),
  },
  uniques: [
    // The stream and the list: (recipient, sequence) is also their index.
    { name: "notifications_recipient_sequence_unique", properties: ["recipientId", "sequence"] },
    // A reminder found due by two replicas is stored once (null keys never conflict).
    { name: "notifications_recipient_dedupe_unique", properties: ["recipientId", "dedupeKey"] },
  ],
  indexes: [
    // Unread badge and unread_only lists.
    { name: "notifications_unread_idx", properties: ["recipientId", "sequence"], where: "read_at is null" },
  ],
});

/**
 * One row per notification and external channel: its state as the patient sees it,
 * and the work queue of the dispatcher. `due_at` is set while there is something to
 * do (send, retry, confirm with the provider) and null once the state is final;
 * replicas claim due rows with `for update skip locked` and a lease (due_at moved
 * forward), so a crash mid-send is retried after the lease, and the idempotency key
 * sent to the Notification Service keeps a retry from sending twice.
 */
export const NotificationDeliveryEntity = defineEntity({
  name: "NotificationDelivery",
  tableName: "notification_deliveries",
  properties: {
    notificationId: p.uuid().primary(),
    channel: p.enum(channelNames).primary(),
    recipientId: p.uuid(),
    state: p.enum(deliveryStates),
    attempts: p.integer(),
    dueAt: p.datetime(3).nullable(),
    /** The Notification Service's `deliveries/{id}`, once it accepted the message. */
    providerDelivery: p.string().length(100).nullable(),
    /** A stable code of the last failure (`UNAVAILABLE`, `NO_ADDRESS`); never a message. */
    lastError: p.string().length(64).nullable(),
    updatedAt: p.datetime(3),
  },
  indexes: [{ name: "notification_deliveries_due_idx", properties: ["dueAt"], where: "due_at is not null" }],
});

/**
 * A patient's notification preferences (one row once they change the defaults).
 * `categories` is `[{category, channels}]` for the categories the patient set;
 * `reminder_offsets_seconds` null means the configured defaults.
 */
export const NotificationPreferenceEntity = defineEntity({
  name: "NotificationPreference",
  tableName: "notification_preferences",
  properties: {
    patientId: p.uuid().primary(),
    categories: p.json<{ category: string; channels: string[] }[]>(),
    quietStartMinute: p.smallint().nullable(),
    quietEndMinute: p.smallint().nullable(),
    timeZone: p.string().length(64).nullable(),
    reminderOffsetsSeconds: p.json<number[]>().nullable(),
    /** Optimistic lock; the etag is `v<version>` (0: never stored). */
    version: p.integer(),
    updatedAt: p.datetime(3),
  },
  checks: [
    {
      name: "notification_preferences_quiet_hours_check",
      expression: "(quiet_start_minute is null) = (quiet_end_minute is null)",
    },
  ],
});

/** The notifications context's entities (registered in src/db/entities.ts). */
export const notificationEntities = [
  NotificationHeadEntity,
  NotificationEntity,
  NotificationDeliveryEntity,
  NotificationPreferenceEntity,
] as const;
