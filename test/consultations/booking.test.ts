import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Appointment_State, Slot_State } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import { Consultation_State, ConsultationMode } from "../../gen/telemed/patient/v1/consultation_pb.js";
import { signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import {
  bookFirstFree,
  type ConsultationClient,
  consultations,
  freeSlots,
  refusal,
  ShiftedClock,
} from "./consultation-fixtures.ts";

let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let other: TestSession;
let client: ConsultationClient;

beforeAll(async () => {
  t = await startTestApp({}, { clock });
  [patient, other] = await Promise.all([signUpPatient(t), signUpPatient(t)]);
  client = consultations(t, patient);
});
afterAll(async () => {
  await t?.close();
});

const doctorSim = () => {
  const sims = t.app.siblings.simulators;
  if (sims === undefined) throw new Error("no simulators");
  return sims.doctor;
};

describe("TST-PT003-1: a patient books a consultation with an available doctor", () => {
  it("is SCHEDULED, holds the slot at the Doctor Service as an appointment, and reads back with the reason", async () => {
    const { consultation, slot } = await bookFirstFree(client, patient.patient, clock, {
      reason: "Recurring headaches",
    });
    expect(consultation.state).toBe(Consultation_State.SCHEDULED);
    expect(consultation.name).toMatch(new RegExp(`^${patient.patient}/consultations/[0-9a-f-]{36}$`));
    expect(consultation).toMatchObject({
      doctor: "doctors/asha-rao",
      slot: slot.name,
      doctorDisplayName: "Dr. Asha Rao",
    });
    expect(consultation.price).toMatchObject({ amountMinor: 80000n, currencyCode: "INR" });
    expect(consultation.bookedBy?.principal).toBe(patient.patient);
    expect(consultation.appointment).toMatch(/^doctors\/asha-rao\/appointments\//);
    expect(doctorSim().slot(slot.name).state).toBe(Slot_State.BOOKED);
    expect(doctorSim().appointments.get(consultation.appointment).bookingReference).toBe(consultation.name);

    const { consultation: read } = await client.getConsultation({ name: consultation.name });
    expect(read).toMatchObject({
      state: Consultation_State.SCHEDULED,
      reason: "Recurring headaches",
      etag: consultation.etag,
    });
    const listed = await client.listConsultations({ parent: patient.patient });
    expect(listed.consultations.map((c) => c.name)).toContain(consultation.name);
    // The slot is no longer offered.
    expect((await freeSlots(client, "doctors/asha-rao", clock)).map((s) => s.name)).not.toContain(slot.name);
  });

  it("stores the reason sealed, never in clear", async () => {
    const secret = `reason-${randomUUID()}`;
    const { consultation } = await bookFirstFree(client, patient.patient, clock, { reason: secret });
    const pg = await import("pg");
    const db = new pg.default.Client({ connectionString: t.database.url });
    await db.connect();
    try {
      const { rows } = await db.query(`select reason_sealed from consultations where id = $1`, [
        consultation.name.split("/")[3],
      ]);
      expect(rows[0].reason_sealed).toMatch(/^v1\./);
      expect(rows[0].reason_sealed).not.toContain(secret);
    } finally {
      await db.end();
    }
  });

  it("a retry with the same request id returns the same consultation; another booking under it is refused", async () => {
    const [slot] = await freeSlots(client, "doctors/meera-nair", clock);
    const request = {
      parent: patient.patient,
      consultation: { doctor: "doctors/meera-nair", slot: slot!.name, mode: ConsultationMode.AUDIO, reason: "Fever" },
      requestId: randomUUID(),
    };
    const first = await client.createConsultation(request);
    const again = await client.createConsultation(request);
    expect(again.consultation?.name).toBe(first.consultation?.name);
    expect(
      doctorSim()
        .appointments.list()
        .filter((a) => a.slot === slot!.name),
    ).toHaveLength(1);
    const changed = await refusal(
      client.createConsultation({ ...request, consultation: { ...request.consultation, reason: "Something else" } }),
    );
    expect(changed).toMatchObject({ code: Code.InvalidArgument, reason: "REQUEST_ID_REUSED" });
  });
});

describe("TST-PT003-2: booking with an unavailable doctor fails with a message a patient understands", () => {
  it("a doctor on leave: FAILED_PRECONDITION DOCTOR_NOT_AVAILABLE", async () => {
    const [slot] = await doctorSim().slots(
      "wei-tan",
      clock.now().getTime() + 86_400_000,
      clock.now().getTime() + 8 * 86_400_000,
    );
    const refused = await refusal(
      client.createConsultation({
        parent: patient.patient,
        consultation: { doctor: "doctors/wei-tan", slot: slot!.name, mode: ConsultationMode.VIDEO },
        requestId: randomUUID(),
      }),
    );
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "DOCTOR_NOT_AVAILABLE" });
    expect(refused.message).toMatch(/not available/);
  });

  it("a slot another patient booked: FAILED_PRECONDITION SLOT_UNAVAILABLE", async () => {
    const { slot } = await bookFirstFree(consultations(t, other), other.patient, clock, {
      doctor: "doctors/james-okafor",
    });
    const refused = await refusal(
      client.createConsultation({
        parent: patient.patient,
        consultation: { doctor: "doctors/james-okafor", slot: slot.name, mode: ConsultationMode.VIDEO },
        requestId: randomUUID(),
      }),
    );
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "SLOT_UNAVAILABLE" });
    expect(refused.message).toBe("This time is no longer available. Please choose another slot.");
  });

  it("the doctor away for the slot's time: FAILED_PRECONDITION DOCTOR_NOT_AVAILABLE", async () => {
    const [slot] = await freeSlots(client, "doctors/lena-fischer", clock);
    const start = new Date(Number(slot!.startTime!.seconds) * 1000);
    doctorSim().setAway("lena-fischer", start, new Date(start.getTime() + 3_600_000));
    const refused = await refusal(
      client.createConsultation({
        parent: patient.patient,
        consultation: { doctor: "doctors/lena-fischer", slot: slot!.name, mode: ConsultationMode.VIDEO },
        requestId: randomUUID(),
      }),
    );
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "DOCTOR_NOT_AVAILABLE" });
  });
});

describe("TST-PT003-3: a patient cancels a booked consultation", () => {
  it("is CANCELLED, says who cancelled and why, and the slot is free again at the Doctor Service", async () => {
    const { consultation, slot } = await bookFirstFree(client, patient.patient, clock, {
      doctor: "doctors/sofia-martinez",
    });
    const { consultation: cancelled } = await client.cancelConsultation({
      name: consultation.name,
      reason: "Feeling better",
      etag: consultation.etag,
    });
    expect(cancelled?.state).toBe(Consultation_State.CANCELLED);
    expect(cancelled?.cancellation).toMatchObject({ reason: "Feeling better", actor: { principal: patient.patient } });
    expect(doctorSim().appointments.get(consultation.appointment).state).toBe(Appointment_State.CANCELLED);
    expect(doctorSim().slot(slot.name).state).toBe(Slot_State.FREE);
    // The status read right after the change is the new one (the status cache was told).
    expect((await client.getConsultation({ name: consultation.name })).consultation?.state).toBe(
      Consultation_State.CANCELLED,
    );
    // Cancelling again is an illegal transition.
    const again = await refusal(client.cancelConsultation({ name: consultation.name }));
    expect(again).toMatchObject({ code: Code.FailedPrecondition, reason: "INVALID_STATE_TRANSITION" });
  });

  it("with a stale etag: ABORTED, nothing changes", async () => {
    const { consultation } = await bookFirstFree(client, patient.patient, clock, { doctor: "doctors/sofia-martinez" });
    const stale = await refusal(client.cancelConsultation({ name: consultation.name, etag: "v999" }));
    expect(stale).toMatchObject({ code: Code.Aborted, reason: "ETAG_MISMATCH" });
    expect((await client.getConsultation({ name: consultation.name })).consultation?.state).toBe(
      Consultation_State.SCHEDULED,
    );
  });
});

describe("bad inputs", () => {
  it("a slot that does not exist: INVALID_ARGUMENT SLOT_NOT_FOUND", async () => {
    const refused = await refusal(
      client.createConsultation({
        parent: patient.patient,
        consultation: {
          doctor: "doctors/asha-rao",
          slot: "doctors/asha-rao/slots/20301301T0330Z",
          mode: ConsultationMode.VIDEO,
        },
        requestId: randomUUID(),
      }),
    );
    expect(refused).toMatchObject({ code: Code.InvalidArgument, reason: "SLOT_NOT_FOUND" });
  });

  it("a slot in the past: FAILED_PRECONDITION SLOT_IN_PAST", async () => {
    const past = doctorSim().slots("asha-rao", Date.now() - 14 * 86_400_000, Date.now() - 86_400_000)[0];
    const refused = await refusal(
      client.createConsultation({
        parent: patient.patient,
        consultation: { doctor: "doctors/asha-rao", slot: past!.name, mode: ConsultationMode.VIDEO },
        requestId: randomUUID(),
      }),
    );
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "SLOT_IN_PAST" });
  });

  it("a doctor who does not exist: INVALID_ARGUMENT DOCTOR_NOT_FOUND", async () => {
    const refused = await refusal(
      client.createConsultation({
        parent: patient.patient,
        consultation: {
          doctor: "doctors/nobody",
          slot: "doctors/nobody/slots/20301201T0330Z",
          mode: ConsultationMode.VIDEO,
        },
        requestId: randomUUID(),
      }),
    );
    expect(refused).toMatchObject({ code: Code.InvalidArgument, reason: "DOCTOR_NOT_FOUND" });
  });

  it("a mode the doctor does not offer: INVALID_ARGUMENT MODE_NOT_OFFERED", async () => {
    const [slot] = await freeSlots(client, "doctors/omar-haddad", clock);
    const refused = await refusal(
      client.createConsultation({
        parent: patient.patient,
        consultation: { doctor: "doctors/omar-haddad", slot: slot!.name, mode: ConsultationMode.CHAT },
        requestId: randomUUID(),
      }),
    );
    expect(refused).toMatchObject({ code: Code.InvalidArgument, reason: "MODE_NOT_OFFERED" });
    expect(doctorSim().slot(slot!.name).state).toBe(Slot_State.FREE);
  });

  it("another patient's consultation: NOT_FOUND for every read and change, as if it did not exist", async () => {
    const { consultation } = await bookFirstFree(client, patient.patient, clock, { doctor: "doctors/vikram-iyer" });
    const stranger = consultations(t, other);
    const calls = [
      () => stranger.getConsultation({ name: consultation.name }),
      () => stranger.cancelConsultation({ name: consultation.name }),
      () => stranger.getConsultationJoinDetails({ name: `${consultation.name}/joinDetails` }),
      () => stranger.listConsultations({ parent: patient.patient }),
      // Their own parent, someone else's consultation id.
      () => stranger.getConsultation({ name: `${other.patient}/consultations/${consultation.name.split("/")[3]}` }),
    ];
    for (const call of calls) expect((await refusal(call())).code).toBe(Code.NotFound);
    expect((await client.getConsultation({ name: consultation.name })).consultation?.state).toBe(
      Consultation_State.SCHEDULED,
    );
  });
});
