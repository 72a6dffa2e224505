import { Migration } from "@mikro-orm/migrations";

/**
 * Issue #7 follow-up, step 2 of 2: drops the plaintext `insurance` (jsonb) of
 * `billing_invoices`, now that its copy is in `insurance_sealed`.
 *
 * It refuses (and the whole migration run rolls back) while an invoice's insurance is
 * not sealed yet: `migrateUp` seals them just before (the data step of
 * Migration20261129170000_seal_invoice_insurance), so this only happens to a caller
 * that migrates without the keys. Irreversible: `down` cannot bring plaintext back.
 */
export class Migration20261129170100_drop_plaintext_invoice_insurance extends Migration {
  override name = "Migration20261129170100_drop_plaintext_invoice_insurance";

  override up(): void {
    this.addSql(`
      do $$
      begin
        if exists (select 1 from "billing_invoices" where "insurance" is not null and "insurance_sealed" is null) then
          raise exception 'billing_invoices still hold plaintext insurance: migrate with the keys (npm run migrate, or start the service) so it is sealed first';
        end if;
      end $$;`);
    this.addSql(`alter table "billing_invoices" drop column "insurance";`);
  }

  override down(): void {
    this.addSql(`do $$ begin raise exception 'the plaintext insurance of invoices cannot be restored'; end $$;`);
  }
}
