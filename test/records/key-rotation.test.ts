import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { Device_Platform } from "../../gen/telemed/patient/v1/record_sync_pb.js";
import { exportJWK, generateKeyPair } from "jose";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withClient } from "../audit/audit-fixtures.ts";
import { authClient, signUpPatient, type TestSession, testPassword } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { addRecord, note, records } from "./record-fixtures.ts";

const root = join(import.meta.dirname, "..", "..");
const keyA = `A=${randomBytes(32).toString("base64")}`;
const keyB = `B=${randomBytes(32).toString("base64")}`;

let database: TestDatabase;
let dir: string;
let dataDir: string;
let app: TestApp | undefined;
const redisKeyPrefix = `patient-test:rotation-${randomBytes(4).toString("hex")}:`;

beforeAll(async () => {
  database = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), "patient-key-rotation-"));
  dataDir = join(dir, "data");
  await writeFile(join(dir, "ring-a"), `${keyA}\n`, { mode: 0o600 });
  await writeFile(join(dir, "ring-ab"), `${keyA}\n${keyB}\n`, { mode: 0o600 });
  await writeFile(join(dir, "ring-b"), `${keyB}\n`, { mode: 0o600 });
}, 120_000);
afterAll(async () => {
  await app?.close();
  await database?.drop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** (Re)starts the service on the shared database and DATA_DIR (sessions stay valid) with this key ring. */
async function restart(ring: string, currentKeyId?: string): Promise<TestApp> {
  await app?.close();
  app = undefined;
  const env: Record<string, string> = { DATA_ENCRYPTION_KEYS_FILE: join(dir, ring) };
  if (currentKeyId !== undefined) env.DATA_ENCRYPTION_KEY_ID = currentKeyId;
  app = await startTestApp(env, { database, dataDir, redisKeyPrefix });
  return app;
}

/** Rows per KEK id in `medical_records` (its data_key_id column, and the id inside the wrapped key) and `patient_devices`. */
async function keyIds(): Promise<{
  records: Record<string, number>;
  wrapped: Record<string, number>;
  devices: Record<string, number>;
}> {
  return withClient(database.url, async (client) => {
    const count = async (sql: string) =>
      Object.fromEntries((await client.query<{ k: string; n: string }>(sql)).rows.map((r) => [r.k, Number(r.n)]));
    return {
      records: await count(`select "data_key_id" as k, count(*) as n from "medical_records" group by 1`),
      wrapped: await count(
        `select split_part("data_key_wrapped", '.', 2) as k, count(*) as n from "medical_records" group by 1`,
      ),
      devices: await count(
        `select split_part("data_key_wrapped", '.', 2) as k, count(*) as n from "patient_devices" group by 1`,
      ),
    };
  });
}

/** Rows per KEK id of the profiles' and accounts' data keys (issue #6: contact fields and login emails). */
async function profileKeyIds(): Promise<{ patients: Record<string, number>; accounts: Record<string, number> }> {
  return withClient(database.url, async (client) => {
    const count = async (table: string) =>
      Object.fromEntries(
        (
          await client.query<{ k: string; n: string }>(
            `select "data_key_id" as k, count(*) as n from "${table}" group by 1`,
          )
        ).rows.map((r) => [r.k, Number(r.n)]),
      );
    return { patients: await count("patients"), accounts: await count("accounts") };
  });
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly out: string;
}

/** `node scripts/rotate-keys.ts` against the test database and ring A+B (B current); killed with SIGKILL once `killWhen` holds. */
function rotate(env: Record<string, string>, killWhen?: (out: string) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    // process.execPath: the Node 24 this test runs on (the one `npx node` gives), so SIGKILL hits the rotator itself.
    const child = spawn(process.execPath, ["scripts/rotate-keys.ts"], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: database.url,
        DATA_DIR: dataDir,
        DATA_ENCRYPTION_KEYS_FILE: join(dir, "ring-ab"),
        DATA_ENCRYPTION_KEY_ID: "B",
        LOG_LEVEL: "silent",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      if (killWhen?.(out) && child.exitCode === null) child.kill("SIGKILL");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, out: out + err }));
  });
}

describe("key rotation (npm run keys:rotate)", () => {
  let patient: TestSession;
  const texts = new Map<string, string>();
  const etags = new Map<string, string>();
  let deviceName = "";

  it("writes under key A; with B current, new writes use B at once and old rows still read", async () => {
    const t = await restart("ring-a");
    patient = await signUpPatient(t);
    for (let i = 0; i < 6; i++) {
      const text = `Rotation note ${i} ${randomBytes(4).toString("hex")}`;
      const created = await addRecord(records(t, patient), patient.patient, note(text, i));
      texts.set(created.name, text);
      etags.set(created.name, created.etag);
    }
    const phone = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256", extractable: true });
    const { device } = await records(t, patient).registerDevice({
      parent: patient.patient,
      device: {
        displayName: "Phone",
        platform: Device_Platform.ANDROID,
        publicKeyJwk: JSON.stringify(await exportJWK(phone.publicKey)),
        pushToken: "push-token-rotation",
      },
      requestId: randomUUID(),
    });
    deviceName = device?.name ?? "";
    expect(await keyIds()).toEqual({ records: { A: 6 }, wrapped: { A: 6 }, devices: { A: 1 } });
    expect(await profileKeyIds()).toEqual({ patients: { A: 1 }, accounts: { A: 1 } });

    const t2 = await restart("ring-ab", "B");
    const text = `Written after the switch ${randomBytes(4).toString("hex")}`;
    const created = await addRecord(records(t2, patient), patient.patient, note(text, 7));
    texts.set(created.name, text);
    etags.set(created.name, created.etag);
    expect(await keyIds()).toEqual({ records: { A: 6, B: 1 }, wrapped: { A: 6, B: 1 }, devices: { A: 1 } });
    await expectAllRead(t2);
  }, 120_000);

  it("rotation killed halfway and resumed: every row ends on B, reads through the API, and still reads once A is gone", async () => {
    const t = app as TestApp;
    // One row per batch, a pause after each: killed (SIGKILL, no clean-up) right after its first batch committed.
    const killed = await rotate({ KEYS_ROTATE_BATCH_SIZE: "1", KEYS_ROTATE_PAUSE_MS: "2000" }, (out) =>
      /medical_records: 1 re-wrapped/.test(out),
    );
    expect(killed.signal, killed.out).toBe("SIGKILL");
    expect(killed.out).toContain('keys:rotate: current key "B"');
    expect(killed.out).toContain("keys:rotate: medical_records: 0 re-wrapped, 6 remaining");
    const halfway = await keyIds();
    expect(halfway.records).toEqual({ A: 5, B: 2 });
    expect(halfway.wrapped).toEqual(halfway.records);
    expect(halfway.devices).toEqual({ A: 1 });
    // The live service reads rows on either key meanwhile.
    await expectAllRead(t);

    const resumed = await rotate({ KEYS_ROTATE_BATCH_SIZE: "2" });
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain("keys:rotate: medical_records: 0 re-wrapped, 5 remaining");
    expect(resumed.out).toContain("keys:rotate: medical_records: 2 re-wrapped, 3 remaining");
    expect(resumed.out).toContain("keys:rotate: medical_records: 5 re-wrapped, 0 remaining; rows per key: B=7");
    expect(resumed.out).toContain("keys:rotate: patient_devices: 1 re-wrapped, 0 remaining; rows per key: B=1");
    expect(resumed.out).toContain("keys:rotate: patients: 1 re-wrapped, 0 remaining; rows per key: B=1");
    expect(resumed.out).toContain("keys:rotate: accounts: 1 re-wrapped, 0 remaining; rows per key: B=1");
    expect(resumed.out).toContain('keys:rotate: done: every wrapped data key is under "B"');
    expect(await keyIds()).toEqual({ records: { B: 7 }, wrapped: { B: 7 }, devices: { B: 1 } });
    expect(await profileKeyIds()).toEqual({ patients: { B: 1 }, accounts: { B: 1 } });
    await expectAllRead(t);

    // Nothing left to do: a run again changes nothing.
    const again = await rotate({});
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain("keys:rotate: medical_records: 0 re-wrapped, 0 remaining; rows per key: B=7");

    // Key A removed from the ring: everything still reads.
    await expectAllRead(await restart("ring-b"));
  }, 180_000);

  it("skips a row a live transaction holds instead of waiting for it, and says so", async () => {
    // Rotating "back" to A (any key named current is the target), with one record locked by a writer meanwhile.
    const held = [...texts.keys()][1]?.split("/").at(-1) as string;
    const writer = new pg.Client({ connectionString: database.url });
    await writer.connect();
    try {
      await writer.query("begin");
      await writer.query(`select 1 from "medical_records" where "id" = $1 for update`, [held]);
      const partial = await rotate({ DATA_ENCRYPTION_KEY_ID: "A" });
      expect(partial.code, partial.out).toBe(1);
      expect(partial.out).toContain("keys:rotate: medical_records: 6 re-wrapped, 1 remaining; rows per key: A=6 B=1");
      expect(partial.out).toContain("1 rows remain on other keys");
      await writer.query("commit");
    } finally {
      await writer.end();
    }
    expect((await rotate({ DATA_ENCRYPTION_KEY_ID: "A" })).code).toBe(0);
    expect((await keyIds()).records).toEqual({ A: 7 });
    expect((await rotate({})).code).toBe(0);
    expect(await keyIds()).toEqual({ records: { B: 7 }, wrapped: { B: 7 }, devices: { B: 1 } });
  }, 60_000);

  it("refuses to run without a readable key ring, and exits 1 on a row it cannot open", async () => {
    const missing = await rotate({ DATA_ENCRYPTION_KEYS_FILE: join(dir, "no-such-ring") });
    expect(missing.code, missing.out).toBe(2);
    expect(missing.out).toContain("DATA_ENCRYPTION_KEYS_FILE");
    // A row wrapped by a key the ring does not hold (B's wrapped key under another id): listed by id, exit 1.
    const victim = [...texts.keys()][0]?.split("/").at(-1) as string;
    await withClient(database.url, (client) =>
      client.query(
        `update "medical_records" set "data_key_id" = 'C', "data_key_wrapped" = replace("data_key_wrapped", 'ek1.B.', 'ek1.C.') where "id" = $1`,
        [victim],
      ),
    );
    const stuck = await rotate({ DATA_ENCRYPTION_KEYS_FILE: join(dir, "ring-b") });
    expect(stuck.code, stuck.out).toBe(1);
    expect(stuck.out).toContain(`medical_records: 1 could not be opened (unknown key or tampered): ${victim}`);
    expect(stuck.out).toContain("rows per key: B=6 C=1");
  }, 60_000);

  async function expectAllRead(t: TestApp): Promise<void> {
    const client = records(t, patient);
    for (const [name, text] of texts) {
      const { record } = await client.getRecord({ name });
      expect(record?.details.case === "patientNote" && record.details.value.text).toBe(text);
      // Re-wrapping leaves the content and the version (etag) as they were.
      expect(record?.etag).toBe(etags.get(name));
    }
    const listed = await client.listRecords({ parent: patient.patient, pageSize: 50 });
    const notes = listed.records.map((r) => (r.details.case === "patientNote" ? r.details.value.text : ""));
    expect(notes.sort()).toEqual([...texts.values()].sort());
    const { devices } = await client.listDevices({ parent: patient.patient });
    expect(devices.map((d) => [d.name, d.pushToken])).toEqual([[deviceName, "push-token-rotation"]]);
    // The profile's sealed contact fields open under whichever key wraps its data key, and the login finds the account.
    const profile = await createClient(
      PatientService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
    ).getPatient({ name: patient.patient });
    expect(profile.patient?.contact?.email).toBe(patient.email);
    expect((await authClient(t).logIn({ email: patient.email, password: testPassword })).outcome.case).toBe(
      "mfaChallenge",
    );
  }
});
