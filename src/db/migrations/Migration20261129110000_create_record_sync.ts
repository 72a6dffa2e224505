import { Migration } from "@mikro-orm/migrations";

/**
 * Offline access and sync of records (issue #6, RQ-PT007): the per-patient change feed
 * (`record_feed_heads`, `record_changes`), the ledger of uploaded offline changes
 * (`record_pushes`) and devices (`patient_devices`). Mirrors
 * src/records/record-sync-entities.ts (test/db/schema-drift.test.ts).
 *
 * A change takes the patient's next sequence number by updating their head row, whose
 * lock is held until the transaction ends, so one patient's changes commit in sequence
 * order (src/records/record-feed.ts). No trigger or function: MikroORM's schema diff
 * manages those, and `consultation_summaries` belongs to the consultations context;
 * summaries enter the feed when it is next read (RecordFeed.catchUpSummaries).
 */
export class Migration20261129110000_create_record_sync extends Migration {
  override name = "Migration20261129110000_create_record_sync";

  override up(): void {
    this.addSql(
      `create table "record_feed_heads" ("patient_id" uuid not null, "last_seq" bigint not null, primary key ("patient_id"));`,
    );
    this.addSql(
      `create table "record_changes" ("patient_id" uuid not null, "seq" bigint not null, "record_id" uuid not null, "origin" text not null, "type" text not null, "changed_at" timestamptz(3) not null, primary key ("patient_id", "seq"));`,
    );
    this.addSql(`create index "record_changes_record_idx" on "record_changes" ("patient_id", "record_id", "seq");`);
    this.addSql(
      `alter table "record_changes" add constraint "record_changes_origin_check" check ("origin" in ('record', 'summary'));`,
    );
    this.addSql(
      `alter table "record_changes" add constraint "record_changes_type_check" check ("type" in ('created', 'updated', 'deleted'));`,
    );
    this.addSql(
      `create table "record_pushes" ("patient_id" uuid not null, "client_id" uuid not null, "outcome" varchar(16) not null, "record_id" uuid not null, "conflict_record_id" uuid null, "pushed_at" timestamptz(3) not null, primary key ("patient_id", "client_id"));`,
    );
    this.addSql(
      `create table "patient_devices" ("id" uuid not null, "patient_id" uuid not null, "display_name" varchar(100) not null, "platform" text not null, "public_key_jwk" text not null, "key_thumbprint" varchar(64) not null, "push_token_sealed" text null, "data_key_wrapped" text not null, "create_request_id" uuid not null, "created_by" varchar(255) not null, "version" int not null, "created_at" timestamptz(3) not null, "last_seen_at" timestamptz(3) null, primary key ("id"));`,
    );
    this.addSql(`create index "patient_devices_patient_idx" on "patient_devices" ("patient_id", "created_at", "id");`);
    this.addSql(
      `alter table "patient_devices" add constraint "patient_devices_create_request_unique" unique ("patient_id", "create_request_id");`,
    );
    this.addSql(
      `alter table "patient_devices" add constraint "patient_devices_platform_check" check ("platform" in ('android', 'ios', 'web', 'field_device'));`,
    );
    // Records written before the feed existed enter it in the order they last changed.
    this.addSql(
      `insert into "record_changes" ("patient_id", "seq", "record_id", "origin", "type", "changed_at") ` +
        `select "patient_id", row_number() over (partition by "patient_id" order by "updated_at", "id"), "id", 'record', ` +
        `case when "deleted_at" is null then 'created' else 'deleted' end, "updated_at" from "medical_records";`,
    );
    this.addSql(
      `insert into "record_feed_heads" ("patient_id", "last_seq") select "patient_id", max("seq") from "record_changes" group by "patient_id";`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "patient_devices";`);
    this.addSql(`drop table if exists "record_pushes";`);
    this.addSql(`drop table if exists "record_changes";`);
    this.addSql(`drop table if exists "record_feed_heads";`);
  }
}
