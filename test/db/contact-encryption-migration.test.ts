import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { passwordsWith } from "../../src/auth/auth-parts.ts";
import { migrateUp } from "../../src/db/migrate.ts";
import { createOrm } from "../../src/db/orm.ts";
import { uuidV7 } from "../../src/shared/uuid-v7.ts";
import { withClient } from "../audit/audit-fixtures.ts";
import { authClient, staffSession, testPassword } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const encryptMigration = "Migration20261129130000_encrypt_contact_fields";

let database: TestDatabase;
let dataDir: string;
let app: TestApp | undefined;

beforeAll(async () => {
  database = await createTestDatabase({ migrate: false });
  dataDir = await mkdtemp(join(tmpdir(), "patient-contact-migration-"));
}, 60_000);
afterAll(async () => {
  await app?.close();
  await database?.drop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** The database as the previous release left it: every migration before the encryption one. */
async function migrateToPreviousRelease(): Promise<void> {
  const orm = await createOrm({ url: database.url, poolMax: 2 });
  try {
    const pending = (await orm.migrator.getPending()).map((migration) => migration.name);
    const previous = pending[pending.indexOf(encryptMigration) - 1] as string;
    await orm.migrator.up({ to: previous });
  } finally {
    await orm.close();
  }
}

describe("issue #6 migration: plaintext contact fields of an existing database", () => {
  const email = `legacy.${randomUUID()}@example.com`;
  const inviteeEmail = `invitee.${randomUUID()}@example.com`;
  const [patientId, inviteeId, accountId, linkId] = [uuidV7(), uuidV7(), uuidV7(), uuidV7()];
  const address = {
    lines: ["7 Legacy Lane"],
    locality: "Chennai",
    region: "TN",
    postalCode: "600001",
    regionCode: "IN",
  };

  it("refuses to drop the plaintext columns while a row is not sealed (a migration run without the keys)", async () => {
    await migrateToPreviousRelease();
    const now = new Date().toISOString();
    const hash = await passwordsWith(10).hash(testPassword);
    await withClient(database.url, async (client) => {
      const insertPatient = (id: string, mail: string, phone: string, postal: object | null) =>
        client.query(
          `insert into "patients" ("id", "given_name", "family_name", "birth_date", "sex", "email", "phone", ` +
            `"preferred_language", "upi_id", "address", "insurance", "emergency_contacts", "version", "created_at", "updated_at") ` +
            `values ($1, 'Meena', 'Iyer', '1984-02-29', 'female', $2, $3, 'ta-IN', 'meena@okicici', $4, $5, $6, 1, $7, $7)`,
          [
            id,
            mail,
            phone,
            JSON.stringify(postal),
            JSON.stringify({ provider: "Legacy Insurer", policyNumber: "L-1", memberId: "M-1" }),
            JSON.stringify([{ displayName: "Legacy Contact", relationship: "spouse", phone: "+919700000007" }]),
            now,
          ],
        );
      await insertPatient(patientId, email, "+919700000001", address);
      await insertPatient(inviteeId, inviteeEmail, "+919700000002", null);
      await client.query(
        `insert into "accounts" ("id", "email", "password_hash", "role", "patient_id", "email_verified_at", ` +
          `"recovery_code_hashes", "tokens_valid_after", "password_changed_at", "created_at", "updated_at") ` +
          `values ($1, $2, $3, 'patient', $4, $5, '[]', $5, $5, $5, $5)`,
        [accountId, email, hash, patientId, now],
      );
      // An invitation by email, matched by SHA-256 of the address before this release.
      await client.query(
        `insert into "family_links" ("id", "guardian_id", "invitee_email_hash", "relationship", "grants", "state", ` +
          `"created_at", "updated_at") values ($1, $2, $3, 'sibling', '{view_records}', 'pending_consent', $4, $4)`,
        [linkId, patientId, createHash("sha256").update(inviteeEmail).digest("hex"), now],
      );
    });
    // Without the data step (no keys), the drop refuses and nothing of it applies.
    const orm = await createOrm({ url: database.url, poolMax: 2 });
    try {
      await expect(migrateUp(orm)).rejects.toThrow();
      expect((await orm.migrator.getPending()).map((m) => m.name)).toContain(encryptMigration);
    } finally {
      await orm.close();
    }
  }, 60_000);

  it("seals every plaintext row at start-up, drops the columns, and the API reads and logs in as before", async () => {
    app = await startTestApp({ PASSWORD_HASH_COST: "10" }, { database, dataDir });
    const leftovers = await withClient(database.url, async (client) => {
      const columns = await client.query<{ c: string }>(
        `select table_name || '.' || column_name as c from information_schema.columns ` +
          `where table_name in ('patients', 'accounts') and column_name in ('email', 'phone', 'address', 'upi_id', 'insurance', 'emergency_contacts')`,
      );
      const rows = await client.query<{ row: string }>(
        `select row_to_json(p)::text as "row" from "patients" p union all select row_to_json(a)::text from "accounts" a`,
      );
      return { columns: columns.rows.map((r) => r.c), text: rows.rows.map((r) => r.row).join("\n") };
    });
    expect(leftovers.columns).toEqual([]);
    for (const needle of [email, inviteeEmail, "+919700000001", "7 Legacy Lane", "meena@okicici", "Legacy Contact"]) {
      expect(leftovers.text).not.toContain(needle);
    }

    const admin = await staffSession(app, "admin");
    const client = createClient(
      PatientService,
      createConnectTransport({ baseUrl: app.baseUrl, httpVersion: "1.1", interceptors: [admin.interceptor] }),
    );
    const { patient } = await client.getPatient({ name: `patients/${patientId}` });
    expect(patient?.contact?.email).toBe(email);
    expect(patient?.contact?.phone).toBe("+919700000001");
    expect(patient?.contact?.address?.lines).toEqual(["7 Legacy Lane"]);
    expect(patient?.upiId).toBe("meena@okicici");
    expect(patient?.insurance?.provider).toBe("Legacy Insurer");
    expect(patient?.emergencyContacts[0]?.displayName).toBe("Legacy Contact");

    // The old account logs in by its email (any case), found by the blind index.
    const loggedIn = await authClient(app).logIn({ email: email.toUpperCase(), password: testPassword });
    expect(loggedIn.outcome.case).toBe("tokens");

    // The pending invitation now holds the invitee's blind index, as new invitations do.
    const matched = await withClient(database.url, async (c) => {
      const result = await c.query<{ same: boolean }>(
        `select fl."invitee_email_hash" = p."email_index" as "same" from "family_links" fl, "patients" p ` +
          `where fl."id" = $1 and p."id" = $2`,
        [linkId, inviteeId],
      );
      return result.rows[0]?.same;
    });
    expect(matched).toBe(true);
  }, 120_000);

  it("refuses to start with another blind index key, which would let a second profile take a stored address", async () => {
    await app?.close();
    app = undefined;
    const otherKey = join(dataDir, "other-blind-index.key");
    await writeFile(otherKey, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    await expect(
      startTestApp({ PASSWORD_HASH_COST: "10", BLIND_INDEX_KEY_FILE: otherKey }, { database, dataDir }),
    ).rejects.toThrow("BLIND_INDEX_KEY_FILE is not the key the stored emails were indexed with");
    // The original key still starts it.
    app = await startTestApp({ PASSWORD_HASH_COST: "10" }, { database, dataDir });
  }, 60_000);
});
