import { Migration } from "@mikro-orm/migrations";

/**
 * Health insights (issue #6, secondary requirement 3): `health_insights`, one row per
 * rule and source record of a patient. Mirrors src/insights/insight-entity.ts
 * (test/db/schema-drift.test.ts). The source record is a `medical_records` row or a
 * `consultation_summaries` row, so it has no foreign key; a deleted record resolves
 * its insights on the next derivation.
 */
export class Migration20261129120000_create_health_insights extends Migration {
  override name = "Migration20261129120000_create_health_insights";

  override up(): void {
    this.addSql(
      `create table "health_insights" ("id" uuid not null, "patient_id" uuid not null, "kind" text not null, "rule_id" varchar(64) not null, "source_record_id" uuid not null, "state" text not null, "title" varchar(100) not null, "explanation_sealed" text not null, "due_date" date not null, "suggested_action" text not null, "action_resource" varchar(200) not null, "version" int not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "closed_at" timestamptz(3) null, primary key ("id"));`,
    );
    this.addSql(
      `create index "health_insights_patient_due_idx" on "health_insights" ("patient_id", "state", "due_date", "id");`,
    );
    this.addSql(
      `alter table "health_insights" add constraint "health_insights_rule_source_unique" unique ("patient_id", "rule_id", "source_record_id");`,
    );
    this.addSql(
      `alter table "health_insights" add constraint "health_insights_kind_check" check ("kind" in ('follow_up_due', 'prescription_ending', 'abnormal_result_without_follow_up'));`,
    );
    this.addSql(
      `alter table "health_insights" add constraint "health_insights_state_check" check ("state" in ('active', 'dismissed', 'resolved'));`,
    );
    this.addSql(
      `alter table "health_insights" add constraint "health_insights_suggested_action_check" check ("suggested_action" in ('book_consultation', 'renew_prescription', 'contact_doctor'));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "health_insights";`);
  }
}
