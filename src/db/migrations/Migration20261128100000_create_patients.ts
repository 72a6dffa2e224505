import { Migration } from "@mikro-orm/migrations";

/**
 * Patient profiles (issue 2, RQ-PT002). Mirrors src/patients/patient-entity.ts;
 * test/db/schema-drift.test.ts fails when the two disagree.
 */
export class Migration20261128100000_create_patients extends Migration {
  override name = "Migration20261128100000_create_patients";

  override up(): void {
    this.addSql(`
      create table "patients" (
        "id" uuid not null,
        "given_name" varchar(100) not null,
        "family_name" varchar(100) not null,
        "birth_date" date not null,
        "sex" text not null,
        "email" varchar(254) not null,
        "phone" varchar(16) not null,
        "preferred_language" varchar(35) not null,
        "upi_id" varchar(255) not null,
        "address" jsonb null,
        "insurance" jsonb null,
        "emergency_contacts" jsonb not null,
        "version" int not null default 1,
        "created_at" timestamptz(3) not null,
        "updated_at" timestamptz(3) not null,
        "deleted_at" timestamptz(3) null,
        "create_request_id" uuid null,
        primary key ("id")
      );`);
    // AIP-155: a retried create hits this and is answered with the row it made.
    this.addSql(
      `alter table "patients" add constraint "patients_create_request_id_unique" unique ("create_request_id");`,
    );
    // List: newest first, keyset on (created_at, id), live rows only.
    this.addSql(
      `create index "patients_created_at_id_live_idx" on "patients" ("created_at" DESC, "id" DESC) where deleted_at is null;`,
    );
    // Email is unique among live profiles; a deleted profile frees its address.
    this.addSql(`create unique index "patients_email_live_unique" on "patients" ("email") where deleted_at is null;`);
    this.addSql(`alter table "patients" add constraint "patients_email_check" check (email = lower(email));`);
    this.addSql(
      `alter table "patients" add constraint "patients_sex_check" check ("sex" in ('unspecified', 'female', 'male', 'other', 'undisclosed'));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "patients";`);
  }
}
