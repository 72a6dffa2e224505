import { Migration } from "@mikro-orm/migrations";

/**
 * Issue #6, encryption of contact details, step 1 of 2: the sealed and blind-index
 * columns of `patients` and `accounts` (src/patients/patient-entity.ts,
 * src/auth/account-entities.ts), nullable while existing rows still hold plaintext.
 * Email uniqueness moves to the blind index.
 *
 * SQL cannot encrypt: between this migration and the next, `migrateUp` runs the data
 * step `encryptPlaintextContacts` (src/patients/contact-encryption-step.ts), which seals
 * every plaintext row with the configured keys; the next migration then drops the
 * plaintext columns, and refuses while any row is not sealed. On a new database there
 * is nothing to seal, so both run straight through.
 */
export class Migration20261129130000_encrypt_contact_fields extends Migration {
  override name = "Migration20261129130000_encrypt_contact_fields";

  override up(): void {
    this.addSql(`
      alter table "patients"
        add column "contact_sealed" text null,
        add column "email_index" varchar(64) null,
        add column "data_key_wrapped" text null,
        add column "data_key_id" varchar(32) null;`);
    this.addSql(`drop index if exists "patients_email_live_unique";`);
    this.addSql(`alter table "patients" drop constraint if exists "patients_email_check";`);
    // Unique among live profiles only, so the address is free again after a delete.
    this.addSql(
      `create unique index "patients_email_index_live_unique" on "patients" ("email_index") where deleted_at is null;`,
    );
    // Key rotation finds the rows still wrapped by an old key-encryption key.
    this.addSql(`create index "patients_data_key_idx" on "patients" ("data_key_id");`);

    this.addSql(`
      alter table "accounts"
        add column "email_index" varchar(64) null,
        add column "email_sealed" text null,
        add column "data_key_wrapped" text null,
        add column "data_key_id" varchar(32) null;`);
    this.addSql(`alter table "accounts" drop constraint if exists "accounts_email_unique";`);
    this.addSql(`alter table "accounts" drop constraint if exists "accounts_email_check";`);
    this.addSql(`alter table "accounts" add constraint "accounts_email_index_unique" unique ("email_index");`);
    this.addSql(`create index "accounts_data_key_idx" on "accounts" ("data_key_id");`);
  }

  override down(): void {
    this.addSql(`drop index if exists "accounts_data_key_idx";`);
    this.addSql(`alter table "accounts" drop constraint if exists "accounts_email_index_unique";`);
    this.addSql(`alter table "accounts" add constraint "accounts_email_unique" unique ("email");`);
    this.addSql(`alter table "accounts" add constraint "accounts_email_check" check (email = lower(email));`);
    this.addSql(
      `alter table "accounts" drop column "email_index", drop column "email_sealed", drop column "data_key_wrapped", drop column "data_key_id";`,
    );
    this.addSql(`drop index if exists "patients_data_key_idx";`);
    this.addSql(`drop index if exists "patients_email_index_live_unique";`);
    this.addSql(`create unique index "patients_email_live_unique" on "patients" ("email") where deleted_at is null;`);
    this.addSql(`alter table "patients" add constraint "patients_email_check" check (email = lower(email));`);
    this.addSql(
      `alter table "patients" drop column "contact_sealed", drop column "email_index", drop column "data_key_wrapped", drop column "data_key_id";`,
    );
  }
}
