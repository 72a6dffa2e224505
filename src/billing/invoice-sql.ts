import type { EntityManager } from "@mikro-orm/postgresql";
import type { ChargeRow, InvoiceRow } from "./billing-rows.ts";
import type { ChargeKindName, ChargeStateName, InvoiceStateName } from "./invoice-rules.ts";

const invoiceColumns = `*, "due_date"::text as "due_day"`;

/**
 * The SQL of charges and invoices: the first half of BillingStore (billing-store.ts
 * adds payments, refunds and the provider's events). Reads of one patient's rows
 * always name the patient.
 */
export class InvoiceSql {
  // ---- charges

  /** Inserts a charge; undefined when its request id or source resource is taken (the caller looks up which). */
  async insertCharge(
    em: EntityManager,
    c: {
      id: string;
      patientId: string;
      kind: ChargeKindName;
      sourceResource: string;
      description: string;
      amountMinor: bigint;
      currency: string;
      requestId: string | null;
      createdBy: string;
      now: Date;
    },
  ): Promise<ChargeRow | undefined> {
    const rows = await em.execute<ChargeRow[]>(
      `insert into "billing_charges" ("id", "patient_id", "kind", "source_resource", "description", "amount_minor", ` +
        `"currency", "state", "invoice_id", "create_request_id", "created_by", "created_at", "updated_at") ` +
        `values (?, ?, ?, ?, ?, ?, ?, 'pending', null, ?, ?, ?, ?) on conflict do nothing returning *`,
      [
        c.id,
        c.patientId,
        c.kind,
        c.sourceResource,
        c.description,
        c.amountMinor.toString(),
        c.currency,
        c.requestId,
        c.createdBy,
        c.now,
        c.now,
      ],
      "all",
    );
    return rows[0];
  }

  async chargeByRequest(em: EntityManager, patientId: string, requestId: string): Promise<ChargeRow | undefined> {
    const rows = await em.execute<ChargeRow[]>(
      `select * from "billing_charges" where "patient_id" = ? and "create_request_id" = ?`,
      [patientId, requestId],
      "all",
    );
    return rows[0];
  }

  async chargeBySource(em: EntityManager, sourceResource: string): Promise<ChargeRow | undefined> {
    const rows = await em.execute<ChargeRow[]>(
      `select * from "billing_charges" where "source_resource" = ?`,
      [sourceResource],
      "all",
    );
    return rows[0];
  }

  /**
   * The charges of completed consultations of a patient (all patients when undefined)
   * that have none yet, at the price agreed at booking (the Doctor Service's). The
   * consultations context owns `consultations`; billing only reads its state and price.
   */
  async chargeCompletedConsultations(em: EntityManager, patientId: string | undefined, now: Date): Promise<number> {
    const rows = await em.execute<{ id: string }[]>(
      `insert into "billing_charges" ("id", "patient_id", "kind", "source_resource", "description", "amount_minor", ` +
        `"currency", "state", "invoice_id", "create_request_id", "created_by", "created_at", "updated_at") ` +
        `select gen_random_uuid(), c."patient_id", 'consultation', 'patients/' || c."patient_id" || '/consultations/' || c."id", ` +
        `left('Teleconsultation, ' || c."doctor_display_name", 200), c."price_amount_minor", c."price_currency", 'pending', ` +
        `null, null, 'system', ?, ? from "consultations" c ` +
        `where c."state" = 'completed' and c."price_amount_minor" > 0 ${patientId === undefined ? "" : `and c."patient_id" = ?`} ` +
        `and not exists (select 1 from "billing_charges" b where b."source_resource" = 'patients/' || c."patient_id" || '/consultations/' || c."id") ` +
        `on conflict do nothing returning "id"`,
      patientId === undefined ? [now, now] : [now, now, patientId],
      "all",
    );
    return rows.length;
  }

  /**
   * Pending or invoiced charges whose source is a consultation that was cancelled
   * since (a sibling charged a booking before it took place): the cancellation sweep's work.
   */
  async chargesOfCancelledConsultations(em: EntityManager, limit: number): Promise<ChargeRow[]> {
    return em.execute<ChargeRow[]>(
      `select b.* from "billing_charges" b join "consultations" c ` +
        `on b."source_resource" = 'patients/' || c."patient_id" || '/consultations/' || c."id" ` +
        `where c."state" = 'cancelled' and b."state" in ('pending', 'invoiced') order by b."created_at" limit ?`,
      [limit],
      "all",
    );
  }

  /** Voids a charge still in `from`; false when it moved meanwhile. */
  async voidCharge(em: EntityManager, chargeId: string, from: ChargeStateName, now: Date): Promise<boolean> {
    const rows = await em.execute<{ id: string }[]>(
      `update "billing_charges" set "state" = 'voided', "updated_at" = ? where "id" = ? and "state" = ? returning "id"`,
      [now, chargeId, from],
      "all",
    );
    return rows.length === 1;
  }

  /** Voids an OPEN invoice nothing was paid on, at the version read. */
  async voidInvoice(em: EntityManager, invoice: InvoiceRow, now: Date): Promise<boolean> {
    const rows = await em.execute<{ id: string }[]>(
      `update "billing_invoices" set "state" = 'void', "version" = "version" + 1, "updated_at" = ? ` +
        `where "id" = ? and "version" = ? and "state" = 'open' and "paid_minor" = 0 returning "id"`,
      [now, invoice.id, invoice.version],
      "all",
    );
    return rows.length === 1;
  }

  /** A patient's pending charges, locked (another roll-up skips them), oldest first. */
  async lockPendingCharges(em: EntityManager, patientId: string): Promise<ChargeRow[]> {
    return em.execute<ChargeRow[]>(
      `select * from "billing_charges" where "patient_id" = ? and "state" = 'pending' ` +
        `order by "created_at", "id" for update skip locked`,
      [patientId],
      "all",
    );
  }

  /** Patients with pending charges (the periodic roll-up). */
  async patientsWithPendingCharges(em: EntityManager, limit: number): Promise<string[]> {
    const rows = await em.execute<{ patient_id: string }[]>(
      `select distinct "patient_id" from "billing_charges" where "state" = 'pending' limit ?`,
      [limit],
      "all",
    );
    return rows.map((row) => row.patient_id);
  }

  async markInvoiced(em: EntityManager, chargeIds: readonly string[], invoiceId: string, now: Date): Promise<number> {
    const rows = await em.execute<{ id: string }[]>(
      `update "billing_charges" set "state" = 'invoiced', "invoice_id" = ?, "updated_at" = ? ` +
        `where "id" = any(?::uuid[]) and "state" = 'pending' returning "id"`,
      [invoiceId, now, `{${chargeIds.join(",")}}`],
      "all",
    );
    return rows.length;
  }

  // ---- invoices

  async insertInvoice(
    em: EntityManager,
    i: {
      id: string;
      patientId: string;
      invoiceNumber: string;
      state: InvoiceStateName;
      currency: string;
      lines: unknown[];
      totals: { subtotal: bigint; tax: bigint; total: bigint; covered: bigint; patientTotal: bigint };
      /** Sealed (invoice-insurance.ts); null when no insurance applied. */
      insuranceSealed: string | null;
      dueDate: string;
      now: Date;
    },
  ): Promise<void> {
    await em.execute(
      `insert into "billing_invoices" ("id", "patient_id", "invoice_number", "state", "currency", "lines", ` +
        `"subtotal_minor", "tax_minor", "total_minor", "covered_minor", "patient_total_minor", "paid_minor", ` +
        `"refunded_minor", "insurance_sealed", "due_date", "issued_at", "paid_at", "version", "created_at", "updated_at") ` +
        `values (?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, 1, ?, ?)`,
      [
        i.id,
        i.patientId,
        i.invoiceNumber,
        i.state,
        i.currency,
        JSON.stringify(i.lines),
        i.totals.subtotal.toString(),
        i.totals.tax.toString(),
        i.totals.total.toString(),
        i.totals.covered.toString(),
        i.totals.patientTotal.toString(),
        i.insuranceSealed,
        i.dueDate,
        i.now,
        i.state === "paid" ? i.now : null,
        i.now,
        i.now,
      ],
      "run",
    );
  }

  async invoice(
    em: EntityManager,
    patientId: string,
    invoiceId: string,
    lock = false,
  ): Promise<InvoiceRow | undefined> {
    const rows = await em.execute<InvoiceRow[]>(
      `select ${invoiceColumns} from "billing_invoices" where "patient_id" = ? and "id" = ?${lock ? " for update" : ""}`,
      [patientId, invoiceId],
      "all",
    );
    return rows[0];
  }

  /** A page of a patient's invoices, newest first, after the cursor. */
  async invoices(
    em: EntityManager,
    patientId: string,
    states: readonly InvoiceStateName[],
    after: { createdAt: string; id: string } | undefined,
    limit: number,
  ): Promise<InvoiceRow[]> {
    const params: unknown[] = [patientId];
    let where = `"patient_id" = ?`;
    if (states.length > 0) {
      where += ` and "state" = any(?::text[])`;
      params.push(`{${states.join(",")}}`);
    }
    if (after !== undefined) {
      where += ` and ("created_at", "id") < (?::timestamptz, ?::uuid)`;
      params.push(after.createdAt, after.id);
    }
    params.push(limit);
    return em.execute<InvoiceRow[]>(
      `select ${invoiceColumns} from "billing_invoices" where ${where} order by "created_at" desc, "id" desc limit ?`,
      params,
      "all",
    );
  }

  /** Moves the invoice's sums and state, guarded by the version read. False when it moved meanwhile. */
  async updateInvoiceSums(
    em: EntityManager,
    invoice: InvoiceRow,
    next: { paid: bigint; refunded: bigint; state: InvoiceStateName; paidAt: Date | null; now: Date },
  ): Promise<boolean> {
    const rows = await em.execute<{ id: string }[]>(
      `update "billing_invoices" set "paid_minor" = ?, "refunded_minor" = ?, "state" = ?, ` +
        `"paid_at" = coalesce("paid_at", ?), "version" = "version" + 1, "updated_at" = ? ` +
        `where "id" = ? and "version" = ? returning "id"`,
      [next.paid.toString(), next.refunded.toString(), next.state, next.paidAt, next.now, invoice.id, invoice.version],
      "all",
    );
    return rows.length === 1;
  }
}
