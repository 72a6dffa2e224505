import { Migration } from "@mikro-orm/migrations";

/**
 * Consultations, their reminders, summaries and feedback, platform feedback, and the
 * doctor accounts' Doctor Service ids (issue #4). Mirrors src/consultations/*-entit*.ts;
 * test/db/schema-drift.test.ts fails when the two disagree. The service role's grants
 * come from the default privileges set by the audit-log migration.
 */
export class Migration20261128150000_create_consultations extends Migration {
  override name = "Migration20261128150000_create_consultations";

  override up(): void {
    this.addSql(
      `create table "consultations" ("id" uuid not null, "patient_id" uuid not null, "doctor_id" varchar(64) not null, "slot_id" varchar(64) not null, "mode" text not null, "reason_sealed" text null, "state" text not null, "start_time" timestamptz(3) not null, "end_time" timestamptz(3) not null, "doctor_display_name" varchar(200) not null, "price_amount_minor" bigint not null, "price_currency" varchar(3) not null, "booked_by" varchar(255) not null, "booked_by_role" text not null, "hold_id" varchar(128) null, "appointment" varchar(200) null, "actual_start_time" timestamptz(3) null, "actual_end_time" timestamptz(3) null, "cancelled_by" varchar(255) null, "cancelled_by_role" text null, "cancel_reason" varchar(500) null, "cancel_code" varchar(32) null, "cancel_time" timestamptz(3) null, "reschedule_count" int not null, "reschedule_request_id" uuid null, "create_request_id" uuid not null, "create_fingerprint" varchar(64) not null, "booked_at" timestamptz(3) not null, "version" int not null default 1, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(
      `create index "consultations_patient_start_idx" on "consultations" ("patient_id", "start_time", "id");`,
    );
    this.addSql(`create index "consultations_doctor_start_idx" on "consultations" ("doctor_id", "start_time", "id");`);
    this.addSql(
      `create index "consultations_open_start_idx" on "consultations" ("start_time") where state in ('requested', 'scheduled');`,
    );
    this.addSql(
      `alter table "consultations" add constraint "consultations_create_request_unique" unique ("patient_id", "create_request_id");`,
    );
    this.addSql(
      `create unique index "consultations_slot_live_unique" on "consultations" ("doctor_id", "slot_id") where state <> 'cancelled';`,
    );
    this.addSql(
      `alter table "consultations" add constraint "consultations_patient_id_foreign" foreign key ("patient_id") references "patients" ("id") on update no action on delete no action;`,
    );
    this.addSql(
      `alter table "consultations" add constraint "consultations_mode_check" check ("mode" in ('video', 'audio', 'chat'));`,
    );
    this.addSql(
      `alter table "consultations" add constraint "consultations_state_check" check ("state" in ('requested', 'scheduled', 'ongoing', 'completed', 'cancelled', 'no_show'));`,
    );
    this.addSql(
      `alter table "consultations" add constraint "consultations_booked_by_role_check" check ("booked_by_role" in ('patient', 'guardian', 'doctor', 'admin', 'service', 'system'));`,
    );
    this.addSql(
      `alter table "consultations" add constraint "consultations_cancelled_by_role_check" check ("cancelled_by_role" in ('patient', 'guardian', 'doctor', 'admin', 'service', 'system'));`,
    );
    this.addSql(
      `create table "consultation_reminders" ("consultation_id" uuid not null, "offset_seconds" int not null, "start_time" timestamptz(3) not null, "sent_at" timestamptz(3) not null, primary key ("consultation_id", "offset_seconds", "start_time"));`,
    );
    this.addSql(
      `alter table "consultation_reminders" add constraint "consultation_reminders_consultation_id_foreign" foreign key ("consultation_id") references "consultations" ("id") on update no action on delete cascade;`,
    );
    this.addSql(
      `create table "consultation_summaries" ("id" uuid not null, "consultation_id" uuid not null, "patient_id" uuid not null, "summary_sealed" text not null, "author" varchar(255) not null, "author_role" varchar(16) not null, "attach_request_id" uuid not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "consultation_summaries" add constraint "consultation_summaries_consultation_unique" unique ("consultation_id");`,
    );
    this.addSql(
      `alter table "consultation_summaries" add constraint "consultation_summaries_consultation_id_foreign" foreign key ("consultation_id") references "consultations" ("id") on update no action on delete no action;`,
    );
    this.addSql(
      `create table "consultation_feedback" ("consultation_id" uuid not null, "patient_id" uuid not null, "doctor_id" varchar(64) not null, "rating" int not null, "comment_sealed" text null, "edit_deadline" timestamptz(3) not null, "version" int not null default 1, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, primary key ("consultation_id"));`,
    );
    this.addSql(`create index "consultation_feedback_doctor_idx" on "consultation_feedback" ("doctor_id");`);
    this.addSql(
      `alter table "consultation_feedback" add constraint "consultation_feedback_consultation_id_foreign" foreign key ("consultation_id") references "consultations" ("id") on update no action on delete no action;`,
    );
    this.addSql(
      `alter table "consultation_feedback" add constraint "consultation_feedback_rating_check" check (rating >= 1 and rating <= 5);`,
    );
    this.addSql(
      `create table "platform_feedback" ("id" uuid not null, "patient_id" uuid not null, "create_request_id" uuid not null, "category" text not null, "rating" int not null, "comment_sealed" text not null, "app_version" varchar(32) not null, "created_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "platform_feedback" add constraint "platform_feedback_create_request_unique" unique ("patient_id", "create_request_id");`,
    );
    this.addSql(
      `alter table "platform_feedback" add constraint "platform_feedback_patient_id_foreign" foreign key ("patient_id") references "patients" ("id") on update no action on delete no action;`,
    );
    this.addSql(
      `alter table "platform_feedback" add constraint "platform_feedback_rating_check" check (rating >= 0 and rating <= 5);`,
    );
    this.addSql(
      `alter table "platform_feedback" add constraint "platform_feedback_category_check" check ("category" in ('usability', 'bug', 'performance', 'accessibility', 'other'));`,
    );
    this.addSql(
      `create table "doctor_accounts" ("account_id" uuid not null, "doctor_id" varchar(64) not null, "created_at" timestamptz(3) not null, primary key ("account_id"));`,
    );
    this.addSql(
      `alter table "doctor_accounts" add constraint "doctor_accounts_doctor_id_unique" unique ("doctor_id");`,
    );
    this.addSql(
      `alter table "doctor_accounts" add constraint "doctor_accounts_account_id_foreign" foreign key ("account_id") references "accounts" ("id") on update no action on delete cascade;`,
    );
  }

  override down(): void {
    for (const table of [
      "doctor_accounts",
      "platform_feedback",
      "consultation_feedback",
      "consultation_summaries",
      "consultation_reminders",
      "consultations",
    ]) {
      this.addSql(`drop table if exists "${table}";`);
    }
  }
}
