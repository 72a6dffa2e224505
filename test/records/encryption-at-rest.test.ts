import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withClient } from "../audit/audit-fixtures.ts";
import { refusal } from "../consultations/consultation-fixtures.ts";
import { signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { addRecord, note, records } from "./record-fixtures.ts";

let t: TestApp;
let patient: TestSession;
let other: TestSession;

beforeAll(async () => {
  t = await startTestApp();
  [patient, other] = await Promise.all([signUpPatient(t), signUpPatient(t)]);
}, 120_000);
afterAll(async () => {
  await t?.close();
});

const idOf = (name: string) => name.split("/").at(-1) as string;

/** Every row of `medical_records`, and of the audit log, as text. */
async function tableText(table: string): Promise<string> {
  return withClient(t.database.url, async (client) => {
    const result = await client.query<{ row: string }>(`select row_to_json(t)::text as "row" from "${table}" t`);
    return result.rows.map((r) => r.row).join("\n");
  });
}

describe("health data is encrypted at rest, field by field, bound to its row", () => {
  it("stores no plaintext of a record's content, and a dev key ring was generated in DATA_DIR/keys", async () => {
    const canary = `CANARY-${randomUUID()}`;
    const created = await addRecord(records(t, patient), patient.patient, note(`Felt ${canary} after lunch`));
    const rows = await tableText("medical_records");
    expect(rows).toContain(idOf(created.name));
    expect(rows).not.toContain(canary);
    expect(rows).not.toContain("after lunch");
    expect(await tableText("audit_log")).not.toContain(canary);
    const ring = await readFile(join(t.dataDir, "keys", "data-encryption-keys"), "utf8");
    expect(ring).toMatch(/^dev-[0-9a-f]{8}=/m);
    // And the API still reads it back.
    const read = await records(t, patient).getRecord({ name: created.name });
    expect(read.record?.details.case === "patientNote" && read.record.details.value.text).toContain(canary);
  });

  it("refuses a ciphertext copied to another row with DATA_LOSS, leaking nothing of either record", async () => {
    const secret = `SECRET-${randomUUID()}`;
    const source = await addRecord(records(t, other), other.patient, note(`Other patient's ${secret}`));
    const target = await addRecord(records(t, patient), patient.patient, note("My own note"));
    const sibling = await addRecord(records(t, patient), patient.patient, note("Another note of mine"));
    // Read first, and more than once: what the service remembers of a row must not outlive its change.
    for (let i = 0; i < 2; i++) {
      expect((await records(t, patient).getRecord({ name: target.name })).record?.name).toBe(target.name);
      expect((await records(t, patient).listRecords({ parent: patient.patient })).records.length).toBeGreaterThan(0);
    }

    // Only the content column: the target's data key does not open it.
    await withClient(t.database.url, (client) =>
      client.query(
        `update "medical_records" set "content_sealed" = (select "content_sealed" from "medical_records" where "id" = $1) where "id" = $2`,
        [idOf(source.name), idOf(target.name)],
      ),
    );
    const error = await refusal(records(t, patient).getRecord({ name: target.name }));
    expect(error).toMatchObject({ code: Code.DataLoss, reason: "RECORD_INTEGRITY_CHECK_FAILED" });
    expect(error.message).not.toContain(secret);
    expect(error.message).not.toContain("note");
    // The history does not silently leave it out either.
    expect((await refusal(records(t, patient).listRecords({ parent: patient.patient }))).code).toBe(Code.DataLoss);

    // The content with its wrapped data key: the key is bound to its own row.
    await withClient(t.database.url, (client) =>
      client.query(
        `update "medical_records" set ("content_sealed", "data_key_wrapped") = ` +
          `(select "content_sealed", "data_key_wrapped" from "medical_records" where "id" = $1) where "id" = $2`,
        [idOf(sibling.name), idOf(target.name)],
      ),
    );
    const again = await refusal(records(t, patient).getRecord({ name: target.name }));
    expect(again).toMatchObject({ code: Code.DataLoss, reason: "RECORD_INTEGRITY_CHECK_FAILED" });
    expect(again.message).not.toContain("Another note");

    // The untouched records still read.
    expect((await records(t, patient).getRecord({ name: sibling.name })).record?.name).toBe(sibling.name);
    expect((await records(t, other).getRecord({ name: source.name })).record?.name).toBe(source.name);
  });
});
