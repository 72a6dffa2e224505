import { Migration } from "@mikro-orm/migrations";

/**
 * Issue #6, encryption of contact details, step 2 of 2: drops the plaintext contact
 * columns of `patients` (email, phone, address, emergency contacts, UPI id, insurance)
 * and the plaintext email of `accounts`, and makes the sealed columns required.
 *
 * It refuses (and with it the whole migration run, which rolls back) while any row is
 * not sealed yet: `migrateUp` seals them just before (the data step of
 * Migration20261129130000_encrypt_contact_fields), so this only happens to a caller
 * that migrates without the keys. Irreversible: `down` cannot bring plaintext back.
 */
export class Migration20261129130100_drop_plaintext_contacts extends Migration {
  override name = "Migration20261129130100_drop_plaintext_contacts";

  override up(): void {
    this.addSql(`
      do $$
      begin
        if exists (select 1 from "patients" where "contact_sealed" is null)
           or exists (select 1 from "accounts" where "email_sealed" is null) then
          raise exception 'patients or accounts still hold plaintext contact fields: migrate with the data encryption keys (npm run migrate, or start the service) so they are sealed first';
        end if;
      end $$;`);
    this.addSql(`
      alter table "patients"
        drop column "email",
        drop column "phone",
        drop column "upi_id",
        drop column "address",
        drop column "insurance",
        drop column "emergency_contacts",
        alter column "contact_sealed" set not null,
        alter column "email_index" set not null,
        alter column "data_key_wrapped" set not null,
        alter column "data_key_id" set not null;`);
    this.addSql(`
      alter table "accounts"
        drop column "email",
        alter column "email_index" set not null,
        alter column "email_sealed" set not null,
        alter column "data_key_wrapped" set not null,
        alter column "data_key_id" set not null;`);
  }

  override down(): void {
    this.addSql(`do $$ begin raise exception 'the plaintext contact columns cannot be restored'; end $$;`);
  }
}
