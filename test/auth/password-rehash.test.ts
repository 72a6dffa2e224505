import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { authClient, signUpPatient } from "../support/auth-fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { startTestApp } from "../support/test-app.ts";

let db: TestDatabase;
// Both starts share DATA_DIR: its generated keys seal and index the account's email.
let dataDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), "patient-rehash-"));
});
afterAll(async () => {
  await db?.drop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** The password hash of the account with this patient's resource name (the email itself is sealed). */
async function storedHash(patient: string): Promise<string> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const result = await client.query<{ password_hash: string }>(
      `select "password_hash" from "accounts" where "patient_id" = $1`,
      [patient.slice("patients/".length)],
    );
    return result.rows[0]?.password_hash ?? "";
  } finally {
    await client.end();
  }
}

describe("password hashes follow PASSWORD_HASH_COST", () => {
  it("a login after the cost was raised re-hashes the password with the new cost, and it still logs in", async () => {
    const before = await startTestApp({ PASSWORD_HASH_COST: "10" }, { database: db, dataDir });
    const session = await signUpPatient(before);
    await before.close();
    expect(await storedHash(session.patient)).toMatch(/^scrypt\$1024\$/);

    const after = await startTestApp({ PASSWORD_HASH_COST: "11" }, { database: db, dataDir });
    try {
      const first = await authClient(after).logIn({ email: session.email, password: session.password });
      expect(first.outcome.case).toBe("mfaChallenge");
      expect(await storedHash(session.patient)).toMatch(/^scrypt\$2048\$/);
      const second = await authClient(after).logIn({ email: session.email, password: session.password });
      expect(second.outcome.case).toBe("mfaChallenge");
      const wrong = authClient(after).logIn({ email: session.email, password: `${session.password}x` });
      await expect(wrong).rejects.toMatchObject({ code: 16 });
    } finally {
      await after.close();
    }
  }, 30_000); // two app starts and four scrypt hashes
});
