import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsultationRepository } from "../../src/consultations/consultation-repository.ts";
import { createOrm } from "../../src/db/orm.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

// Partial indexes and stale statistics. Beside a condition on other columns, a predicate that
// implies a partial index's lets PostgreSQL AND that whole index into the plan while it has no
// statistics of the table (after a bulk import, before ANALYZE): milliseconds per query, growing
// with the table. It happened to the batched reads of patients by id (a plan this test could not
// reproduce on a fresh table) and to ListConsultations' state filter. These tests load a table
// without statistics and count the scans of the partial index while the service's query runs.

let db: TestDatabase;
let admin: pg.Client;
const patientId = "00000000-0000-7000-8000-000000000042";

beforeAll(async () => {
  db = await createTestDatabase();
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(`alter table "consultations" set (autovacuum_enabled = false)`);
  // Foreign keys are not what this is about: the rows name patients that do not exist.
  await admin.query(`set session_replication_role = replica`);
  await admin.query(
    `insert into "consultations" ("id", "patient_id", "doctor_id", "slot_id", "mode", "state", "start_time", "end_time",
       "doctor_display_name", "price_amount_minor", "price_currency", "booked_by", "booked_by_role", "reschedule_count",
       "create_request_id", "create_fingerprint", "booked_at", "version", "created_at", "updated_at")
     select gen_random_uuid(), ('00000000-0000-7000-8000-' || lpad((g % 5000)::text, 12, '0'))::uuid, 'd' || (g % 50),
       's' || g, 'video', (array['requested', 'scheduled', 'ongoing', 'completed', 'cancelled', 'no_show'])[1 + g % 6],
       now() + g * interval '1 minute', now() + g * interval '1 minute' + interval '30 minutes', 'Dr', 100, 'INR', 'x',
       'admin', 0, gen_random_uuid(), 'f', now(), 1, now(), now()
     from generate_series(1, 100000) g`,
  );
  await admin.query(`set session_replication_role = origin`);
});

afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

/** Scans of `index` so far, as the statistics report them once the backends that scanned have flushed theirs. */
async function scansOf(index: string): Promise<number> {
  await admin.query("select pg_stat_clear_snapshot()");
  const { rows } = await admin.query<{ scans: string }>(
    `select idx_scan::text as scans from pg_stat_user_indexes where indexrelname = $1`,
    [index],
  );
  return Number(rows[0]?.scans ?? Number.NaN);
}

/** Runs `work` on the service's repositories, then ends their connections so their statistics arrive. */
async function withServiceOrm(work: (consultations: ConsultationRepository) => Promise<void>): Promise<void> {
  const orm = await createOrm({ url: db.url, poolMax: 1 });
  try {
    await work(new ConsultationRepository(() => orm.em.fork()));
    // A backend flushes its statistics when it exits; an idle one only after ~10 s.
    await admin.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
    );
  } finally {
    await orm.close();
  }
}

/** Waits until the statistics show `counted` above `before` (they arrive once the scanning backend has gone). */
async function untilCounted(counted: () => Promise<number>, before: number): Promise<number> {
  const deadline = Date.now() + 3_000;
  let now = await counted();
  while (now === before && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    now = await counted();
  }
  return now;
}

describe("queries beside partial indexes, on a table without statistics", () => {
  it("ListConsultations by patient and state reads the patient's rows, not the index of open consultations", async () => {
    const openBefore = await scansOf("consultations_open_start_idx");
    const patientBefore = await scansOf("consultations_patient_start_idx");
    const requestBefore = await scansOf("consultations_create_request_unique");
    let listed = 0;
    await withServiceOrm(async (consultations) => {
      const page = await consultations.list({
        patientId,
        doctorId: undefined,
        states: ["requested", "scheduled"],
        startFrom: undefined,
        startBefore: undefined,
        pageSize: 5,
        after: undefined,
      });
      listed = page.length;
    });
    expect(listed).toBe(6); // the page and one more, which tells there is a next page (7 of the patient's 20 are open)
    // The patient's rows came through one of the indexes that lead with the patient.
    const byPatient = async () =>
      (await scansOf("consultations_patient_start_idx")) + (await scansOf("consultations_create_request_unique"));
    expect(await untilCounted(byPatient, patientBefore + requestBefore)).toBeGreaterThan(patientBefore + requestBefore);
    expect(await scansOf("consultations_open_start_idx")).toBe(openBefore);
  });

  it("finds the trap it guards against: the same filter written plainly scans the index of open consultations", async () => {
    const openBefore = await scansOf("consultations_open_start_idx");
    const plain = new pg.Client({ connectionString: db.url });
    await plain.connect();
    try {
      await plain.query(
        `select "id" from "consultations" where "patient_id" = $1 and "state" in ('requested', 'scheduled') ` +
          `order by "start_time", "id" limit 11`,
        [patientId],
      );
    } finally {
      await plain.end();
    }
    expect(await untilCounted(() => scansOf("consultations_open_start_idx"), openBefore)).toBeGreaterThan(openBefore);
  });
});
