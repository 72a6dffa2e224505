import { Migration } from "@mikro-orm/migrations";

/**
 * Billing and payments (issue #7, RQ-PT008): charges, invoices (lines as jsonb),
 * payments, refunds and the ledger of provider events. Mirrors
 * src/billing/billing-entities.ts (test/db/schema-drift.test.ts). The unique
 * constraints are what keeps a patient from being charged twice: one charge per
 * source resource, one payment per (patient, request id), one payment per provider
 * reference, one ledger row per provider event id.
 */
export class Migration20261129150000_create_billing extends Migration {
  override name = "Migration20261129150000_create_billing";

  override up(): void {
    this.addSql(
      `create table "billing_charges" ("id" uuid not null, "patient_id" uuid not null, "kind" text not null, "source_resource" varchar(300) not null, "description" varchar(200) not null, "amount_minor" bigint not null, "currency" varchar(3) not null, "state" text not null, "invoice_id" uuid null, "create_request_id" uuid null, "created_by" varchar(255) not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(
      `create index "billing_charges_patient_state_idx" on "billing_charges" ("patient_id", "state", "currency");`,
    );
    this.addSql(
      `alter table "billing_charges" add constraint "billing_charges_source_unique" unique ("source_resource");`,
    );
    this.addSql(
      `alter table "billing_charges" add constraint "billing_charges_request_unique" unique ("patient_id", "create_request_id");`,
    );
    this.addSql(
      `create table "billing_invoices" ("id" uuid not null, "patient_id" uuid not null, "invoice_number" varchar(32) not null, "state" text not null, "currency" varchar(3) not null, "lines" jsonb not null, "subtotal_minor" bigint not null, "tax_minor" bigint not null, "total_minor" bigint not null, "covered_minor" bigint not null, "patient_total_minor" bigint not null, "paid_minor" bigint not null, "refunded_minor" bigint not null, "insurance" jsonb null, "due_date" date not null, "issued_at" timestamptz(3) not null, "paid_at" timestamptz(3) null, "version" int not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "billing_invoices" add constraint "billing_invoices_number_unique" unique ("invoice_number");`,
    );
    this.addSql(
      `create index "billing_invoices_patient_created_idx" on "billing_invoices" ("patient_id", "created_at", "id");`,
    );
    this.addSql(
      `create table "billing_payments" ("id" uuid not null, "patient_id" uuid not null, "invoice_id" uuid not null, "request_id" uuid not null, "amount_minor" bigint not null, "currency" varchar(3) not null, "upi_id_sealed" text not null, "state" text not null, "failure_reason" text null, "provider" varchar(32) not null, "provider_reference" varchar(128) null, "refunded_minor" bigint not null, "payer" varchar(255) not null, "payer_role" varchar(16) not null, "receipt_number" varchar(32) null, "expire_at" timestamptz(3) not null, "settled_at" timestamptz(3) null, "version" int not null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "billing_payments" add constraint "billing_payments_receipt_unique" unique ("receipt_number");`,
    );
    this.addSql(
      `create index "billing_payments_patient_created_idx" on "billing_payments" ("patient_id", "created_at", "id");`,
    );
    this.addSql(`create index "billing_payments_invoice_idx" on "billing_payments" ("invoice_id", "state");`);
    this.addSql(`create index "billing_payments_state_idx" on "billing_payments" ("state", "updated_at");`);
    this.addSql(
      `alter table "billing_payments" add constraint "billing_payments_request_unique" unique ("patient_id", "request_id");`,
    );
    this.addSql(
      `alter table "billing_payments" add constraint "billing_payments_provider_ref_unique" unique ("provider", "provider_reference");`,
    );
    this.addSql(
      `create table "billing_provider_events" ("provider" varchar(32) not null, "event_id" varchar(128) not null, "kind" varchar(32) not null, "provider_reference" varchar(128) not null, "payment_id" uuid null, "refund_id" uuid null, "amount_minor" bigint null, "currency" varchar(3) null, "via" varchar(16) not null, "outcome" varchar(16) not null, "occurred_at" timestamptz(3) not null, "received_at" timestamptz(3) not null, primary key ("provider", "event_id"));`,
    );
    this.addSql(
      `create index "billing_provider_events_payment_idx" on "billing_provider_events" ("payment_id", "received_at");`,
    );
    this.addSql(
      `create table "billing_refunds" ("id" uuid not null, "payment_id" uuid not null, "patient_id" uuid not null, "request_id" uuid not null, "amount_minor" bigint not null, "state" text not null, "reason" varchar(500) not null, "provider_reference" varchar(128) null, "requested_by" varchar(255) not null, "requested_by_role" varchar(16) not null, "created_at" timestamptz(3) not null, "completed_at" timestamptz(3) null, "updated_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(`create index "billing_refunds_payment_idx" on "billing_refunds" ("payment_id", "created_at");`);
    this.addSql(
      `alter table "billing_refunds" add constraint "billing_refunds_request_unique" unique ("payment_id", "request_id");`,
    );
    this.addSql(
      `alter table "billing_refunds" add constraint "billing_refunds_provider_ref_unique" unique ("provider_reference");`,
    );
    this.addSql(
      `alter table "billing_charges" add constraint "billing_charges_amount_minor_check" check (amount_minor > 0);`,
    );
    this.addSql(
      `alter table "billing_charges" add constraint "billing_charges_kind_check" check ("kind" in ('consultation', 'emergency_transport', 'xray', 'other'));`,
    );
    this.addSql(
      `alter table "billing_charges" add constraint "billing_charges_state_check" check ("state" in ('pending', 'invoiced', 'voided'));`,
    );
    this.addSql(
      `alter table "billing_invoices" add constraint "billing_invoices_patient_total_minor_check" check (patient_total_minor >= 0);`,
    );
    this.addSql(
      `alter table "billing_invoices" add constraint "billing_invoices_paid_minor_check" check (paid_minor >= 0);`,
    );
    this.addSql(
      `alter table "billing_invoices" add constraint "billing_invoices_refunded_minor_check" check (refunded_minor >= 0 and refunded_minor <= paid_minor);`,
    );
    this.addSql(
      `alter table "billing_invoices" add constraint "billing_invoices_state_check" check ("state" in ('draft', 'open', 'partially_paid', 'paid', 'void', 'refunded'));`,
    );
    this.addSql(
      `alter table "billing_payments" add constraint "billing_payments_amount_minor_check" check (amount_minor > 0);`,
    );
    this.addSql(
      `alter table "billing_payments" add constraint "billing_payments_refunded_minor_check" check (refunded_minor >= 0 and refunded_minor <= amount_minor);`,
    );
    this.addSql(
      `alter table "billing_payments" add constraint "billing_payments_state_check" check ("state" in ('pending', 'authorized', 'succeeded', 'failed', 'expired'));`,
    );
    this.addSql(
      `alter table "billing_payments" add constraint "billing_payments_failure_reason_check" check ("failure_reason" in ('declined', 'insufficient_funds', 'invalid_upi_id', 'timeout', 'provider_error'));`,
    );
    this.addSql(
      `alter table "billing_refunds" add constraint "billing_refunds_amount_minor_check" check (amount_minor > 0);`,
    );
    this.addSql(
      `alter table "billing_refunds" add constraint "billing_refunds_state_check" check ("state" in ('pending', 'succeeded', 'failed'));`,
    );
  }

  override down(): void {
    for (const table of [
      "billing_provider_events",
      "billing_refunds",
      "billing_payments",
      "billing_invoices",
      "billing_charges",
    ]) {
      this.addSql(`drop table if exists "${table}";`);
    }
  }
}
