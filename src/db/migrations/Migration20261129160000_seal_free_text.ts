import { Migration } from "@mikro-orm/migrations";

/**
 * Issue #6, safety 2 (the canary test, test/security/canary-plaintext.test.ts), step 1
 * of 2: sealed columns for the free text and contact details that were still in clear
 * outside the profile: an emergency's description, location, callback phone and
 * cancel reason (envelope encryption with a data key per row, src/emergencies/
 * emergency-sealing.ts) and a consultation's cancel reason (sealed like its reason);
 * and data keys for consultation summaries and health insights, whose text moves from
 * the secret key to envelope encryption (so `npm run keys:rotate` covers them).
 * Nullable while existing rows still hold plaintext: between this migration and the
 * next, `migrateUp` runs the data steps (src/app/free-text-steps.ts), then the next
 * migration drops the plaintext columns.
 */
export class Migration20261129160000_seal_free_text extends Migration {
  override name = "Migration20261129160000_seal_free_text";

  override up(): void {
    this.addSql(`
      alter table "emergencies"
        add column "details_sealed" text null,
        add column "data_key_wrapped" text null,
        add column "data_key_id" varchar(32) null,
        add column "cancel_reason_sealed" text null;`);
    // Key rotation finds the rows still wrapped by an old key-encryption key.
    this.addSql(`create index "emergencies_data_key_idx" on "emergencies" ("data_key_id");`);
    this.addSql(`alter table "consultations" add column "cancel_reason_sealed" text null;`);
    // Summaries and insight explanations move from the secret key to envelope encryption (key rotation).
    for (const table of ["consultation_summaries", "health_insights"]) {
      this.addSql(
        `alter table "${table}" add column "data_key_wrapped" text null, add column "data_key_id" varchar(32) null;`,
      );
      this.addSql(`create index "${table}_data_key_idx" on "${table}" ("data_key_id");`);
    }
  }

  override down(): void {
    for (const table of ["consultation_summaries", "health_insights"]) {
      this.addSql(`drop index if exists "${table}_data_key_idx";`);
      this.addSql(`alter table "${table}" drop column "data_key_wrapped", drop column "data_key_id";`);
    }
    this.addSql(`alter table "consultations" drop column "cancel_reason_sealed";`);
    this.addSql(`drop index if exists "emergencies_data_key_idx";`);
    this.addSql(
      `alter table "emergencies" drop column "details_sealed", drop column "data_key_wrapped", drop column "data_key_id", drop column "cancel_reason_sealed";`,
    );
  }
}
