import { Migration } from "@mikro-orm/migrations";

/**
 * The notification store, channel deliveries and preferences (issue 4, RQ-PT006,
 * secondary requirement 6). Mirrors src/notifications/notification-entities.ts;
 * test/db/schema-drift.test.ts fails when the two disagree. The service role gets its
 * privileges from the default privileges of the audit migration.
 */
export class Migration20261128150100_create_notifications extends Migration {
  override name = "Migration20261128150100_create_notifications";

  override up(): void {
    // Per-recipient sequence allocation: the row lock orders commits per recipient.
    this.addSql(`
      create table "notification_heads" (
        "recipient_id" uuid not null,
        "last_sequence" bigint not null,
        "updated_at" timestamptz(3) not null,
        primary key ("recipient_id")
      );`);
    this.addSql(`
      create table "notifications" (
        "id" uuid not null,
        "recipient_id" uuid not null,
        "sequence" bigint not null,
        "about_patient_id" uuid null,
        "category" text not null,
        "priority" text not null,
        "title" varchar(200) not null,
        "body" varchar(2000) not null,
        "subject_resource" varchar(300) null,
        "dedupe_key" varchar(200) null,
        "expire_at" timestamptz(3) null,
        "created_at" timestamptz(3) not null,
        "read_at" timestamptz(3) null,
        primary key ("id")
      );`);
    // The stream reads and the list pages on (recipient, sequence).
    this.addSql(
      `alter table "notifications" add constraint "notifications_recipient_sequence_unique" unique ("recipient_id", "sequence");`,
    );
    // Exactly-once drafts (reminders): insert … on conflict do nothing.
    this.addSql(
      `alter table "notifications" add constraint "notifications_recipient_dedupe_unique" unique ("recipient_id", "dedupe_key");`,
    );
    this.addSql(
      `create index "notifications_unread_idx" on "notifications" ("recipient_id", "sequence") where read_at is null;`,
    );
    this.addSql(
      `alter table "notifications" add constraint "notifications_category_check" check ("category" in ('consultations', 'emergencies', 'health_alerts', 'billing', 'marketing', 'account'));`,
    );
    this.addSql(
      `alter table "notifications" add constraint "notifications_priority_check" check ("priority" in ('normal', 'high', 'critical'));`,
    );
    this.addSql(`
      create table "notification_deliveries" (
        "notification_id" uuid not null,
        "channel" text not null,
        "recipient_id" uuid not null,
        "state" text not null,
        "attempts" int not null,
        "due_at" timestamptz(3) null,
        "provider_delivery" varchar(100) null,
        "last_error" varchar(64) null,
        "updated_at" timestamptz(3) not null,
        primary key ("notification_id", "channel")
      );`);
    // The dispatcher's queue: only rows with work left.
    this.addSql(
      `create index "notification_deliveries_due_idx" on "notification_deliveries" ("due_at") where due_at is not null;`,
    );
    this.addSql(
      `alter table "notification_deliveries" add constraint "notification_deliveries_channel_check" check ("channel" in ('push', 'email', 'sms'));`,
    );
    this.addSql(
      `alter table "notification_deliveries" add constraint "notification_deliveries_state_check" check ("state" in ('pending', 'deferred', 'delivered', 'failed', 'suppressed'));`,
    );
    this.addSql(`
      create table "notification_preferences" (
        "patient_id" uuid not null,
        "categories" jsonb not null,
        "quiet_start_minute" smallint null,
        "quiet_end_minute" smallint null,
        "time_zone" varchar(64) null,
        "reminder_offsets_seconds" jsonb null,
        "version" int not null,
        "updated_at" timestamptz(3) not null,
        primary key ("patient_id")
      );`);
    this.addSql(
      `alter table "notification_preferences" add constraint "notification_preferences_quiet_hours_check" check ((quiet_start_minute is null) = (quiet_end_minute is null));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "notification_preferences";`);
    this.addSql(`drop table if exists "notification_deliveries";`);
    this.addSql(`drop table if exists "notifications";`);
    this.addSql(`drop table if exists "notification_heads";`);
  }
}
