import { Migration } from "@mikro-orm/migrations";

/**
 * Medical records (issue #6): `medical_records`, a patient's history but the
 * consultation summaries (those stay in `consultation_summaries`). Mirrors
 * src/records/record-entity.ts; test/db/schema-drift.test.ts fails when the two
 * disagree. Content is stored only as ciphertext (envelope encryption, see the
 * entity). The service role's grants come from the default privileges set by the
 * audit-log migration.
 */
export class Migration20261129100000_create_medical_records extends Migration {
  override name = "Migration20261129100000_create_medical_records";

  override up(): void {
    this.addSql(
      `create table "medical_records" ("id" uuid not null, "patient_id" uuid not null, "kind" text not null, "effective_time" timestamptz(3) not null, "consultation_id" uuid null, "source" text not null, "author" varchar(255) not null, "author_role" varchar(16) not null, "content_sealed" text not null, "data_key_wrapped" text not null, "data_key_id" varchar(32) not null, "create_request_id" uuid not null, "create_fingerprint" varchar(64) not null, "version" int not null default 1, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "deleted_at" timestamptz(3) null, "delete_reason_sealed" text null, primary key ("id"));`,
    );
    this.addSql(`create index "medical_records_data_key_idx" on "medical_records" ("data_key_id");`);
    this.addSql(
      `create index "medical_records_patient_effective_idx" on "medical_records" ("patient_id", "effective_time", "id");`,
    );
    this.addSql(`create index "medical_records_consultation_idx" on "medical_records" ("consultation_id");`);
    this.addSql(
      `alter table "medical_records" add constraint "medical_records_create_request_unique" unique ("patient_id", "create_request_id");`,
    );
    this.addSql(
      `alter table "medical_records" add constraint "medical_records_patient_id_foreign" foreign key ("patient_id") references "patients" ("id") on update no action on delete no action;`,
    );
    this.addSql(
      `alter table "medical_records" add constraint "medical_records_kind_check" check ("kind" in ('prescription', 'test_result', 'xray_study', 'allergy', 'condition', 'immunization', 'blood_group', 'patient_note'));`,
    );
    this.addSql(
      `alter table "medical_records" add constraint "medical_records_source_check" check ("source" in ('clinician', 'service', 'patient'));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "medical_records";`);
  }
}
