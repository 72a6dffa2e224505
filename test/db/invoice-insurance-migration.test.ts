import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lazySecretBox } from "../../src/app/free-text-steps.ts";
import { secretBoxFor } from "../../src/auth/auth-parts.ts";
import type { InvoiceRow } from "../../src/billing/billing-rows.ts";
import { insuranceEncryptionStep } from "../../src/billing/insurance-encryption-step.ts";
import { openInsurance } from "../../src/billing/invoice-insurance.ts";
import { migrateUp } from "../../src/db/migrate.ts";
import { createOrm } from "../../src/db/orm.ts";
import { uuidV7 } from "../../src/shared/uuid-v7.ts";
import { withClient } from "../audit/audit-fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const sealMigration = "Migration20261129170000_seal_invoice_insurance";

let database: TestDatabase;
let dir: string;
beforeAll(async () => {
  database = await createTestDatabase({ migrate: false });
  dir = await mkdtemp(join(tmpdir(), "patient-invoice-insurance-migration-"));
}, 60_000);
afterAll(async () => {
  await database?.drop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("issue #7 follow-up migration: an invoice's plaintext insurance in an existing database", () => {
  const secretKey = randomBytes(32);
  const [insuredId, uninsuredId, patientId] = [uuidV7(), uuidV7(), uuidV7()];
  const legacy = {
    provider: "Legacy Insurer",
    policyNumber: "LEGACY-POL-42",
    memberId: "LEGACY-MEM-7",
    coverageBasisPoints: 8000,
  };

  it("refuses to drop the plaintext while an invoice is not sealed, then seals it and drops the column", async () => {
    const orm = await createOrm({ url: database.url, poolMax: 2 });
    try {
      const pending = (await orm.migrator.getPending()).map((migration) => migration.name);
      await orm.migrator.up({ to: pending[pending.indexOf(sealMigration) - 1] as string });
      const now = new Date().toISOString();
      await withClient(database.url, async (client) => {
        for (const [id, insurance] of [
          [insuredId, JSON.stringify(legacy)],
          [uninsuredId, null],
        ] as const) {
          await client.query(
            `insert into "billing_invoices" ("id", "patient_id", "invoice_number", "state", "currency", "lines", ` +
              `"subtotal_minor", "tax_minor", "total_minor", "covered_minor", "patient_total_minor", "paid_minor", ` +
              `"refunded_minor", "insurance", "due_date", "issued_at", "paid_at", "version", "created_at", "updated_at") ` +
              `values ($1, $2, $3, 'open', 'INR', '[]', 10000, 1800, 11800, 9440, 2360, 0, 0, $4, '2026-12-14', $5, null, 1, $5, $5)`,
            [id, patientId, `INV-LEGACY-${id.slice(-6)}`, insurance, now],
          );
        }
      });

      // Without the keys (no data step) the plaintext stays, and so does the column.
      await expect(migrateUp(orm)).rejects.toThrow();
      const keyFile = join(dir, "secret.key");
      await writeFile(keyFile, `${secretKey.toString("base64")}\n`);
      await migrateUp(orm, [
        insuranceEncryptionStep(lazySecretBox({ secretKeyFile: keyFile, secretKeyConfigured: true })),
      ]);

      const rows = await orm.em
        .fork()
        .execute<InvoiceRow[]>(`select * from "billing_invoices" order by "id"`, [], "all");
      const byId = new Map(rows.map((row) => [row.id, row]));
      const box = secretBoxFor(secretKey);
      expect(openInsurance(box, byId.get(insuredId) as InvoiceRow)).toEqual(legacy);
      expect(byId.get(uninsuredId)?.insurance_sealed).toBeNull();
      expect(JSON.stringify(rows)).not.toContain("LEGACY-POL-42");
      const plaintextColumns = await orm.em
        .fork()
        .execute(
          `select column_name from information_schema.columns where table_name = 'billing_invoices' and column_name = 'insurance'`,
          [],
          "all",
        );
      expect(plaintextColumns).toEqual([]);
    } finally {
      await orm.close();
    }
  });
});
