import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Appointment_State } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import { Consultation_State, ConsultationMode } from "../../gen/telemed/patient/v1/consultation_pb.js";
import { signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { consultations, freeSlots, refusal, ShiftedClock } from "./consultation-fixtures.ts";

let t: TestApp;
const clock = new ShiftedClock();
let patients: TestSession[] = [];

beforeAll(async () => {
  // A cheaper password hash: 64 sign-ups and log-ins, on two cores.
  t = await startTestApp({ PASSWORD_HASH_COST: "10" }, { clock });
  for (let i = 0; i < 64; i += 8) {
    patients.push(...(await Promise.all(Array.from({ length: 8 }, () => signUpPatient(t)))));
  }
}, 120_000);
afterAll(async () => {
  await t?.close();
  patients = [];
});

async function query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const db = new pg.Client({ connectionString: t.database.url });
  await db.connect();
  try {
    return (await db.query<T>(sql, params)).rows;
  } finally {
    await db.end();
  }
}

describe("a slot is booked at most once, whatever the concurrency", () => {
  it("64 patients book one slot at once: one succeeds, 63 get FAILED_PRECONDITION, the Doctor Service has one booking", async () => {
    const [slot] = await freeSlots(consultations(t, patients[0]!), "doctors/asha-rao", clock);
    const outcomes = await Promise.all(
      patients.map((p) =>
        consultations(t, p)
          .createConsultation({
            parent: p.patient,
            consultation: { doctor: "doctors/asha-rao", slot: slot!.name, mode: ConsultationMode.VIDEO },
            requestId: randomUUID(),
          })
          .then(
            (ok) => ({ ok: true as const, name: ok.consultation?.name ?? "" }),
            async (error: unknown) => ({ ok: false as const, refused: await refusal(Promise.reject(error)) }),
          ),
      ),
    );
    const winners = outcomes.filter((o) => o.ok);
    const losers = outcomes.flatMap((o) => (o.ok ? [] : [o.refused]));
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(63);
    for (const loser of losers)
      expect(loser).toMatchObject({ code: Code.FailedPrecondition, reason: "SLOT_UNAVAILABLE" });

    const appointments = t.app.siblings
      .simulators!.doctor.appointments.list()
      .filter((a) => a.slot === slot!.name && a.state !== Appointment_State.CANCELLED);
    expect(appointments).toHaveLength(1);
    expect(appointments[0]?.bookingReference).toBe(winners[0]?.name);
    const rows = await query(`select id from consultations where slot_id = $1 and state <> 'cancelled'`, [
      slot!.name.split("/")[3],
    ]);
    expect(rows).toHaveLength(1);
  });

  it("the database itself refuses a second live booking of a slot (the partial unique index), and allows one after a cancel", async () => {
    const [row] = await query<Record<string, unknown>>(`select * from consultations limit 1`);
    const copy = { ...row, id: randomUUID(), create_request_id: randomUUID() };
    const columns = Object.keys(copy);
    const insert = `insert into consultations (${columns.map((c) => `"${c}"`).join(", ")}) values (${columns.map((_, i) => `$${i + 1}`).join(", ")})`;
    await expect(query(insert, Object.values(copy))).rejects.toMatchObject({
      constraint: "consultations_slot_live_unique",
    });
    const cancelled = { ...copy, id: randomUUID(), create_request_id: randomUUID(), state: "cancelled" };
    await query(insert, Object.values(cancelled));
  });

  it("bookings of many slots at once (committed together) each get their own SCHEDULED consultation and one audit entry; a retry racing its first call gets the same consultation", async () => {
    const slots = await freeSlots(consultations(t, patients[0]!), "doctors/sofia-martinez", clock);
    const bookers = patients.slice(0, 16);
    const requests = bookers.map((p, i) => ({
      parent: p.patient,
      consultation: {
        doctor: "doctors/sofia-martinez",
        slot: slots[i]!.name,
        mode: ConsultationMode.VIDEO,
        reason: `Reason ${i}`,
      },
      requestId: randomUUID(),
    }));
    const answers = await Promise.all([
      ...requests.map((request, i) => consultations(t, bookers[i]!).createConsultation(request)),
      consultations(t, bookers[0]!).createConsultation(requests[0]!),
    ]);
    const names = answers.map((answer) => answer.consultation?.name ?? "");
    expect(names.at(-1)).toBe(names[0]);
    const booked = names.slice(0, -1);
    expect(new Set(booked).size).toBe(16);
    for (const [i, name] of booked.entries()) {
      const { consultation } = await consultations(t, bookers[i]!).getConsultation({ name });
      expect(consultation).toMatchObject({
        state: Consultation_State.SCHEDULED,
        slot: slots[i]!.name,
        reason: `Reason ${i}`,
      });
    }
    const appointments = t.app.siblings
      .simulators!.doctor.appointments.list()
      .filter((a) => booked.includes(a.bookingReference) && a.state !== Appointment_State.CANCELLED);
    expect(appointments).toHaveLength(16);
    // One entry per booking from its CreateConsultation (the reads above have entries of their own).
    const audited = await query<{ resource: string }>(
      `select "resource" from audit_log where "resource" = any($1) and "rpc" like '%/CreateConsultation'`,
      [booked],
    );
    expect(audited.map((row) => row.resource).sort()).toEqual([...booked].sort());
  });
});
