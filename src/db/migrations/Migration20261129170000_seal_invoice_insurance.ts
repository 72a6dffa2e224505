import { Migration } from "@mikro-orm/migrations";

/**
 * Issue #7 follow-up (the canary test covering billing), step 1 of 2: a sealed column
 * for the insurance an invoice applied (insurer, policy number, member id: contact and
 * insurance identifiers, encrypted field by field like the profile's copy in
 * `patients.contact_sealed`). Sealed like the payer's UPI id in `billing_payments`
 * (the secret key, AES-256-GCM bound to the invoice row; src/billing/invoice-insurance.ts).
 * Nullable: an invoice issued without a valid policy has none, and existing rows still
 * hold the plaintext until the data step between this migration and the next
 * (src/billing/insurance-encryption-step.ts) seals them; the next migration drops the
 * plaintext `insurance` column.
 */
export class Migration20261129170000_seal_invoice_insurance extends Migration {
  override name = "Migration20261129170000_seal_invoice_insurance";

  override up(): void {
    this.addSql(`alter table "billing_invoices" add column "insurance_sealed" text null;`);
  }

  override down(): void {
    this.addSql(`alter table "billing_invoices" drop column "insurance_sealed";`);
  }
}
