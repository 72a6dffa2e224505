import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeTextEncryptionSteps } from "../../src/app/free-text-steps.ts";
import { secretBoxFor } from "../../src/auth/auth-parts.ts";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConsultationSummarySchema } from "../../gen/telemed/patient/v1/record_pb.js";
import { openText } from "../../src/consultations/consultation-deps.ts";
import { ConsultationSummaries, legacySummaryContext } from "../../src/consultations/consultation-summaries.ts";
import { explanationColumn, insightTable, legacyInsightContext } from "../../src/insights/insight-derivation.ts";
import { migrateUp } from "../../src/db/migrate.ts";
import { createOrm } from "../../src/db/orm.ts";
import { EmergencySealer } from "../../src/emergencies/emergency-sealing.ts";
import { emergencySqlWith } from "../../src/emergencies/emergency-store.ts";
import { uuidV7 } from "../../src/shared/uuid-v7.ts";
import { withClient } from "../audit/audit-fixtures.ts";
import { testFieldCrypto } from "../support/test-crypto.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const sealMigration = "Migration20261129160000_seal_free_text";

let database: TestDatabase;
let dir: string;
beforeAll(async () => {
  database = await createTestDatabase({ migrate: false });
  dir = await mkdtemp(join(tmpdir(), "patient-free-text-migration-"));
}, 60_000);
afterAll(async () => {
  await database?.drop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("issue #6 migration: plaintext emergencies and cancel reasons of an existing database", () => {
  const crypto = testFieldCrypto();
  const secretKey = randomBytes(32);
  const [emergencyId, patientId, consultationId, summaryId, insightId] = [
    uuidV7(),
    uuidV7(),
    uuidV7(),
    uuidV7(),
    uuidV7(),
  ];
  const legacyBox = secretBoxFor(secretKey);
  const summary = create(ConsultationSummarySchema, { chiefComplaint: "Legacy cough", plan: "Legacy syrup" });
  const location = { latitude: 13.08, longitude: 80.27, accuracyMeters: 20, landmark: "Legacy landmark" };

  it("refuses to drop the plaintext while a row is not sealed, then seals every row and drops it", async () => {
    const orm = await createOrm({ url: database.url, poolMax: 2 });
    try {
      const pending = (await orm.migrator.getPending()).map((migration) => migration.name);
      await orm.migrator.up({ to: pending[pending.indexOf(sealMigration) - 1] as string });
      const now = new Date().toISOString();
      await withClient(database.url, async (client) => {
        await client.query(
          `insert into "emergencies" ("id", "patient_id", "kind", "severity", "priority", "description", "location", ` +
            `"callback_phone", "state", "last_source_sequence", "timeline_length", "requested_by", "requested_by_role", ` +
            `"merged_request_count", "cancelled_by", "cancelled_by_role", "cancel_reason", "version", "created_at", "updated_at") ` +
            `values ($1, $2, 'cardiac', 'critical', 1, 'Legacy chest pain', $3, '+919700000042', 'cancelled', 0, 2, ` +
            `'patients/x', 'patient', 0, 'patients/x', 'patient', 'Legacy false alarm', 1, $4, $4)`,
          [emergencyId, patientId, JSON.stringify(location), now],
        );
        const patientColumns = await client.query(
          `select column_name from information_schema.columns where table_name = 'patients' and is_nullable = 'NO' and column_default is null`,
        );
        const values: Record<string, string> = {
          id: patientId,
          birth_date: "1980-01-01",
          created_at: now,
          updated_at: now,
          sex: "female",
        };
        const names = patientColumns.rows.map((row: { column_name: string }) => row.column_name);
        await client.query(
          `insert into "patients" (${names.map((n) => `"${n}"`).join(", ")}) values (${names.map((_, i) => `$${i + 1}`).join(", ")})`,
          names.map((name) => values[name] ?? `legacy-${name}`),
        );
        await client.query(
          `insert into "consultations" ("id", "patient_id", "doctor_id", "slot_id", "mode", "state", "start_time", "end_time", ` +
            `"doctor_display_name", "price_amount_minor", "price_currency", "booked_by", "booked_by_role", "cancelled_by", ` +
            `"cancelled_by_role", "cancel_reason", "cancel_time", "reschedule_count", "create_request_id", "create_fingerprint", ` +
            `"booked_at", "created_at", "updated_at") values ($1, $2, 'asha-rao', 's1', 'video', 'cancelled', $3, $3, ` +
            `'Dr. Asha Rao', 50000, 'INR', 'patients/x', 'patient', 'patients/x', 'patient', 'Legacy: feeling better', $3, 0, $4, 'f', $3, $3, $3)`,
          [consultationId, patientId, now, uuidV7()],
        );
        // Sealed with the secret key, as before issue #6.
        await client.query(
          `insert into "consultation_summaries" ("id", "consultation_id", "patient_id", "summary_sealed", "author", ` +
            `"author_role", "attach_request_id", "created_at", "updated_at") values ($1, $2, $3, $4, 'accounts/d', 'doctor', $5, $6, $6)`,
          [
            summaryId,
            consultationId,
            patientId,
            legacyBox.seal(
              Buffer.from(toBinary(ConsultationSummarySchema, summary)).toString("base64"),
              legacySummaryContext(consultationId),
            ),
            uuidV7(),
            now,
          ],
        );
        await client.query(
          `insert into "health_insights" ("id", "patient_id", "kind", "rule_id", "source_record_id", "state", "title", ` +
            `"explanation_sealed", "due_date", "suggested_action", "action_resource", "version", "created_at", "updated_at") ` +
            `values ($1, $2, 'follow_up_due', 'r1', $3, 'active', 'Follow-up due', $4, '2030-01-01', 'book_consultation', 'doctors/asha-rao', 1, $5, $5)`,
          [insightId, patientId, summaryId, legacyBox.seal("Legacy explanation", legacyInsightContext(insightId)), now],
        );
      });

      // Without the keys (no data steps) the plaintext stays, and so do the columns.
      await expect(migrateUp(orm)).rejects.toThrow();
      const keyFile = join(dir, "secret.key");
      await writeFile(keyFile, `${secretKey.toString("base64")}\n`);
      await migrateUp(orm, freeTextEncryptionSteps(crypto, { secretKeyFile: keyFile, secretKeyConfigured: true }));

      const em = orm.em.fork();
      const stored = await emergencySqlWith(new EmergencySealer(crypto)).get(em, emergencyId);
      expect(stored).toMatchObject({
        description: "Legacy chest pain",
        location,
        callbackPhone: "+919700000042",
        cancelReason: "Legacy false alarm",
      });
      const [row] = await em.execute<Array<{ cancel_reason_sealed: string }>>(
        `select "cancel_reason_sealed" from "consultations" where "id" = ?`,
        [consultationId],
        "all",
      );
      expect(openText(secretBoxFor(secretKey), row?.cancel_reason_sealed, consultationId)).toBe(
        "Legacy: feeling better",
      );
      // Summaries and explanations: under data keys of their own now.
      expect((await new ConsultationSummaries(crypto).find(em, consultationId))?.summary).toEqual(summary);
      const [insight] = await em.execute<Array<{ explanation_sealed: string; data_key_wrapped: string }>>(
        `select "explanation_sealed", "data_key_wrapped" from "health_insights" where "id" = ?`,
        [insightId],
        "all",
      );
      const insightKey = crypto.cipher.openDataKey(insight?.data_key_wrapped ?? "", {
        table: insightTable,
        row: insightId,
      });
      expect(insightKey.openText(explanationColumn, insight?.explanation_sealed ?? "")).toBe("Legacy explanation");
      const plaintextColumns = await em.execute<Array<{ table_name: string; column_name: string }>>(
        `select table_name, column_name from information_schema.columns where (table_name = 'emergencies' and column_name in ('description', 'location', 'callback_phone', 'cancel_reason')) or (table_name = 'consultations' and column_name = 'cancel_reason')`,
        [],
        "all",
      );
      expect(plaintextColumns).toEqual([]);
    } finally {
      await orm.close();
    }
  });
});
