import { Migration } from "@mikro-orm/migrations";

/**
 * Issue #6, safety 2, step 2 of 2: drops the plaintext description, location, callback
 * phone and cancel reason of `emergencies` and the plaintext cancel reason of
 * `consultations`, and makes the sealed emergency columns and the data keys of
 * consultation summaries and health insights required.
 *
 * It refuses (and the whole migration run rolls back) while a row is not sealed yet:
 * `migrateUp` seals them just before (the data steps of
 * Migration20261129160000_seal_free_text), so this only happens to a caller that
 * migrates without the keys. Irreversible: `down` cannot bring plaintext back.
 */
export class Migration20261129160100_drop_plaintext_free_text extends Migration {
  override name = "Migration20261129160100_drop_plaintext_free_text";

  override up(): void {
    this.addSql(`
      do $$
      begin
        if exists (select 1 from "emergencies" where "details_sealed" is null
                     or ("cancel_reason" is not null and "cancel_reason_sealed" is null))
           or exists (select 1 from "consultations" where "cancel_reason" is not null and "cancel_reason_sealed" is null)
           or exists (select 1 from "consultation_summaries" where "data_key_wrapped" is null)
           or exists (select 1 from "health_insights" where "data_key_wrapped" is null) then
          raise exception 'emergencies or consultations still hold plaintext free text: migrate with the keys (npm run migrate, or start the service) so they are sealed first';
        end if;
      end $$;`);
    this.addSql(`
      alter table "emergencies"
        drop column "description",
        drop column "location",
        drop column "callback_phone",
        drop column "cancel_reason",
        alter column "details_sealed" set not null,
        alter column "data_key_wrapped" set not null,
        alter column "data_key_id" set not null;`);
    this.addSql(`alter table "consultations" drop column "cancel_reason";`);
    for (const table of ["consultation_summaries", "health_insights"]) {
      this.addSql(
        `alter table "${table}" alter column "data_key_wrapped" set not null, alter column "data_key_id" set not null;`,
      );
    }
  }

  override down(): void {
    this.addSql(`do $$ begin raise exception 'the plaintext free-text columns cannot be restored'; end $$;`);
  }
}
