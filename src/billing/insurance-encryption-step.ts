import type { EntityManager } from "@mikro-orm/postgresql";
import type { SecretBox } from "../auth/auth-deps.ts";
import type { DataStep } from "../db/migrate.ts";
import { dataStepBatchSize, inBatches, updateRowsById } from "../db/data-step-batches.ts";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import { type InvoiceInsurance, sealInsurance } from "./invoice-insurance.ts";

/** A `billing_invoices` row whose insurance is still in clear (the jsonb of Migration20261129150000_create_billing). */
interface PlainInsurance {
  readonly id: string;
  readonly insurance: Partial<InvoiceInsurance> | string;
}

/**
 * The data step of Migration20261129170000_seal_invoice_insurance: before the next
 * migration drops the plaintext column, every invoice whose insurance is still in
 * clear gets it sealed (invoice-insurance.ts), in batches of one transaction each (a
 * killed run keeps what it did; the next start continues). Runs under the migration
 * lock; on a new database, or one without insured invoices, it finds nothing and reads
 * no key (`box` is called only for a row that needs it).
 */
export function insuranceEncryptionStep(box: () => Promise<SecretBox>, logger?: Logger): DataStep {
  return {
    before: "Migration20261129170100_drop_plaintext_invoice_insurance",
    run: async (orm) => {
      const sealed = await sealInvoices(orm, box);
      if (sealed > 0) logger?.info({ invoices: sealed }, "plaintext invoice insurance sealed (issue #7 migration)");
    },
  };
}

function sealInvoices(orm: Orm, box: () => Promise<SecretBox>): Promise<number> {
  return inBatches(orm, async (em: EntityManager) => {
    const rows = await em.execute<PlainInsurance[]>(
      `select "id", "insurance" from "billing_invoices" ` +
        `where "insurance" is not null and "insurance_sealed" is null order by "id" limit ? for update`,
      [dataStepBatchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const sealer = await box();
    const sealed = rows.map((row) => {
      const plain = (
        typeof row.insurance === "string" ? JSON.parse(row.insurance) : row.insurance
      ) as Partial<InvoiceInsurance>;
      return {
        id: row.id,
        insurance_sealed: sealInsurance(sealer, row.id, {
          provider: String(plain.provider ?? ""),
          policyNumber: String(plain.policyNumber ?? ""),
          memberId: String(plain.memberId ?? ""),
          coverageBasisPoints: Number(plain.coverageBasisPoints ?? 0),
        }),
      };
    });
    await updateRowsById(em, "billing_invoices", { insurance_sealed: "text" }, sealed);
    return rows.length;
  });
}
