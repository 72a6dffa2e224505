import { Migration } from "@mikro-orm/migrations";

/**
 * Emergencies, their request ids, timelines and the JetStream outbox (issue 5,
 * RQ-PT005). Mirrors src/emergencies/emergency-entities.ts; test/db/schema-drift.test.ts
 * fails when the two disagree. The service role gets its privileges from the default
 * privileges of the audit migration.
 */
export class Migration20261128160000_create_emergencies extends Migration {
  override name = "Migration20261128160000_create_emergencies";

  override up(): void {
    this.addSql(`
      create table "emergencies" (
        "id" uuid not null,
        "patient_id" uuid not null,
        "kind" text not null,
        "severity" text not null,
        "priority" smallint not null,
        "description" varchar(2000) not null,
        "location" jsonb not null,
        "callback_phone" varchar(16) not null,
        "state" text not null,
        "last_source_sequence" bigint not null,
        "timeline_length" int not null,
        "assignment" jsonb null,
        "requested_by" varchar(255) not null,
        "requested_by_role" text not null,
        "merged_request_count" int not null,
        "cancelled_by" varchar(255) null,
        "cancelled_by_role" text null,
        "cancel_reason" varchar(500) null,
        "version" int not null,
        "created_at" timestamptz(3) not null,
        "updated_at" timestamptz(3) not null,
        "ended_at" timestamptz(3) null,
        "dispatched_at" timestamptz(3) null,
        primary key ("id")
      );`);
    // ListEmergencies and the merge look-up of a patient's open emergency.
    this.addSql(`create index "emergencies_patient_list_idx" on "emergencies" ("patient_id", "id");`);
    this.addSql(
      `alter table "emergencies" add constraint "emergencies_priority_check" check (priority >= 1 and priority <= 3);`,
    );
    this.addSql(
      `alter table "emergencies" add constraint "emergencies_kind_check" check ("kind" in ('cardiac', 'breathing', 'stroke', 'trauma', 'bleeding', 'unconscious', 'allergic_reaction', 'seizure', 'maternity', 'poisoning', 'other'));`,
    );
    this.addSql(
      `alter table "emergencies" add constraint "emergencies_severity_check" check ("severity" in ('critical', 'serious', 'urgent'));`,
    );
    this.addSql(
      `alter table "emergencies" add constraint "emergencies_state_check" check ("state" in ('dispatch_pending', 'requested', 'dispatched', 'en_route', 'on_scene', 'transporting', 'at_hospital', 'closed', 'cancelled'));`,
    );

    this.addSql(`
      create table "emergency_requests" (
        "patient_id" uuid not null,
        "request_id" uuid not null,
        "emergency_id" uuid not null,
        "merged" boolean not null,
        "created_at" timestamptz(3) not null,
        primary key ("patient_id", "request_id")
      );`);

    this.addSql(`
      create table "emergency_events" (
        "emergency_id" uuid not null,
        "position" int not null,
        "state" text not null,
        "source_sequence" bigint null,
        "event_time" timestamptz(3) not null,
        "actor" varchar(255) not null,
        "actor_role" text not null,
        "note" varchar(200) not null,
        "recorded_at" timestamptz(3) not null,
        primary key ("emergency_id", "position")
      );`);
    this.addSql(
      `alter table "emergency_events" add constraint "emergency_events_state_check" check ("state" in ('dispatch_pending', 'requested', 'dispatched', 'en_route', 'on_scene', 'transporting', 'at_hospital', 'closed', 'cancelled'));`,
    );

    this.addSql(`
      create table "emergency_outbox" (
        "id" uuid not null,
        "emergency_id" uuid not null,
        "topic" text not null,
        "priority" smallint not null,
        "msg_id" varchar(80) not null,
        "payload" bytea not null,
        "attempts" int not null,
        "next_attempt_at" timestamptz(3) not null,
        "last_error" varchar(64) null,
        "created_at" timestamptz(3) not null,
        "sent_at" timestamptz(3) null,
        primary key ("id")
      );`);
    this.addSql(`alter table "emergency_outbox" add constraint "emergency_outbox_msg_id_unique" unique ("msg_id");`);
    // The relay's queue: only unsent rows, P1 first, oldest first.
    this.addSql(
      `create index "emergency_outbox_due_idx" on "emergency_outbox" ("priority", "created_at") where sent_at is null;`,
    );
    this.addSql(
      `alter table "emergency_outbox" add constraint "emergency_outbox_priority_check" check (priority >= 1 and priority <= 3);`,
    );
    this.addSql(
      `alter table "emergency_outbox" add constraint "emergency_outbox_topic_check" check ("topic" in ('requested', 'cancelled'));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "emergency_outbox";`);
    this.addSql(`drop table if exists "emergency_events";`);
    this.addSql(`drop table if exists "emergency_requests";`);
    this.addSql(`drop table if exists "emergencies";`);
  }
}
