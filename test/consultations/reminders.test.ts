import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Notification, NotificationCategory } from "../../gen/telemed/patient/v1/notification_pb.js";
import { NotificationService } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import { notificationClient, StreamReader } from "../notifications/notification-fixtures.ts";
import { signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { bookFirstFree, consultations, ShiftedClock } from "./consultation-fixtures.ts";

// Two replicas of the service on one database and one Redis prefix, sharing a clock
// the test moves; each scans for due reminders every 50 ms.
let database: TestDatabase;
let first: TestApp;
let second: TestApp;
let dataDir: string;
const clock = new ShiftedClock();
let patient: TestSession;
const scanMs = 50;

beforeAll(async () => {
  database = await createTestDatabase();
  const redisKeyPrefix = `patient-test:${randomUUID()}:`;
  const env = { CONSULTATION_REMINDER_SCAN_INTERVAL_MS: String(scanMs), NOTIFICATION_REMINDER_OFFSETS: "24h,15m" };
  // One DATA_DIR: one signing key, so each replica accepts the other's tokens.
  dataDir = await mkdtemp(join(tmpdir(), "patient-test-reminders-"));
  first = await startTestApp(env, { database, redisKeyPrefix, clock, dataDir });
  second = await startTestApp(env, { database, redisKeyPrefix, clock, dataDir });
  patient = await signUpPatient(first);
});
afterEach(() => clock.reset());
afterAll(async () => {
  await first?.close();
  await second?.close();
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

async function remindersOf(consultationName: string): Promise<Array<{ offset_seconds: number }>> {
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  try {
    const { rows } = await db.query(
      `select offset_seconds from consultation_reminders where consultation_id = $1 order by offset_seconds desc`,
      [consultationName.split("/")[3]],
    );
    return rows;
  } finally {
    await db.end();
  }
}

async function reminderNotifications(consultationName: string): Promise<number> {
  const client = createClient(
    NotificationService,
    createConnectTransport({ baseUrl: first.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
  );
  const { notifications } = await client.listNotifications({ parent: patient.patient, pageSize: 100 });
  return notifications.filter((n) => n.title === "Upcoming consultation" && n.subjectResource === consultationName)
    .length;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, scanMs * 8));

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, scanMs));
  }
}

describe("TST-PT006-1 reminders of an upcoming consultation", () => {
  it("go out once per offset with two replicas scanning, at 24 h and at 15 min before the start", async () => {
    // Two days ahead, so the 24 h offset comes after the booking whatever the weekday.
    const { consultation, startMs } = await bookFirstFree(consultations(t1(), patient), patient.patient, clock, {
      fromMs: 2 * 86_400_000,
    });
    await settle();
    expect(await remindersOf(consultation.name)).toEqual([]);

    clock.travelTo(new Date(startMs - 86_400_000 + 1000));
    await until(async () => (await remindersOf(consultation.name)).length > 0);
    await settle();
    expect(await remindersOf(consultation.name)).toEqual([{ offset_seconds: 86_400 }]);
    expect(await reminderNotifications(consultation.name)).toBe(1);

    clock.travelTo(new Date(startMs - 900_000 + 1000));
    await until(async () => (await remindersOf(consultation.name)).length > 1);
    await settle();
    expect(await remindersOf(consultation.name)).toEqual([{ offset_seconds: 86_400 }, { offset_seconds: 900 }]);
    expect(await reminderNotifications(consultation.name)).toBe(2);
  });

  it("arrives live on the patient's WatchNotifications stream, on time, whichever replica sent it", async () => {
    const client = consultations(t1(), patient);
    const { consultation, startMs } = await bookFirstFree(client, patient.patient, clock, { fromMs: 2 * 86_400_000 });
    // The stream is open on the second replica; either replica may find the reminder due.
    const stream = new StreamReader(notificationClient(second, patient.interceptor, "grpc-web"), {
      parent: patient.patient,
    });
    try {
      await stream.untilCaughtUp();
      const dueAt = startMs - 900_000;
      clock.travelTo(new Date(dueAt + 1000));
      let reminder: Notification | undefined;
      while (reminder === undefined) {
        const [next] = await stream.notifications(1, 5000);
        if (next?.title === "Upcoming consultation" && next.subjectResource === consultation.name) reminder = next;
      }
      // On time: created within the scan interval (plus slack) of when it became due, by the app's clock.
      const createdMs = Number(reminder.createTime?.seconds ?? 0n) * 1000 + (reminder.createTime?.nanos ?? 0) / 1e6;
      expect(createdMs).toBeGreaterThanOrEqual(dueAt);
      expect(createdMs - dueAt).toBeLessThan(1000 + scanMs * 40);
      expect(reminder.category).toBe(NotificationCategory.CONSULTATIONS);
    } finally {
      stream.close();
    }
  });

  it("never for a cancelled consultation", async () => {
    const client = consultations(t1(), patient);
    const { consultation, startMs } = await bookFirstFree(client, patient.patient, clock);
    await client.cancelConsultation({ name: consultation.name });
    clock.travelTo(new Date(startMs - 900_000 + 1000));
    await settle();
    await settle();
    expect(await remindersOf(consultation.name)).toEqual([]);
    expect(await reminderNotifications(consultation.name)).toBe(0);
  });
});

function t1(): TestApp {
  return first;
}
