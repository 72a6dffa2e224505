import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consultation_State } from "../../gen/telemed/patient/v1/consultation_pb.js";
import { signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { bookFirstFree, consultations, ShiftedClock } from "./consultation-fixtures.ts";

// Two replicas on one database, one Redis prefix (so one status cache) and one DATA_DIR
// (so one signing key: each accepts the other's tokens), as in a deployment.
let database: TestDatabase;
let dataDir: string;
let first: TestApp;
let second: TestApp;
let patient: TestSession;
const clock = new ShiftedClock();

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), "patient-test-replicas-"));
  const shared = { database, dataDir, redisKeyPrefix: `patient-test:${randomUUID()}:`, clock };
  first = await startTestApp({}, shared);
  second = await startTestApp({}, shared);
  patient = await signUpPatient(first);
});
afterAll(async () => {
  await first?.close();
  await second?.close();
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("consultation statuses across replicas", () => {
  it("a change committed on one replica is never read stale on the other, even while reads race it", async () => {
    const onFirst = consultations(first, patient);
    const onSecond = consultations(second, patient);
    for (let round = 0; round < 3; round++) {
      const { consultation } = await bookFirstFree(onFirst, patient.patient, clock, { fromMs: 2 * 86_400_000 });
      // The second replica reads (and caches) the scheduled status first.
      const before = await onSecond.getConsultation({ name: consultation.name });
      expect(before.consultation?.state).toBe(Consultation_State.SCHEDULED);

      let racing = true;
      const reads = (async () => {
        let count = 0;
        while (racing) {
          await onSecond.getConsultation({ name: consultation.name });
          count++;
        }
        return count;
      })();
      await onFirst.cancelConsultation({ name: consultation.name, reason: "Feeling better" });
      // Every read that starts after the cancel answered sees it, on either replica.
      const afterOnSecond = await onSecond.getConsultation({ name: consultation.name });
      const listedOnSecond = await onSecond.listConsultations({ parent: patient.patient, pageSize: 50 });
      racing = false;
      expect(await reads).toBeGreaterThan(0);
      expect(afterOnSecond.consultation?.state).toBe(Consultation_State.CANCELLED);
      expect(listedOnSecond.consultations.find((c) => c.name === consultation.name)?.state).toBe(
        Consultation_State.CANCELLED,
      );
    }
  });
});
