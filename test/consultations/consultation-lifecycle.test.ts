import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Appointment_State, Slot_State } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  Consultation_State,
  ConsultationJoinDetails_Participant,
  ConsultationMode,
} from "../../gen/telemed/patient/v1/consultation_pb.js";
import { FamilyGrant, FamilyRelationship } from "../../gen/telemed/patient/v1/family_pb.js";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { bookFirstFree, consultations, freeSlots, refusal, ShiftedClock } from "./consultation-fixtures.ts";

let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let asha: TestSession;
let vikram: TestSession;
let admin: TestSession;
const minute = 60_000;

beforeAll(async () => {
  t = await startTestApp(
    { CONSULTATION_CHANGE_CUTOFF_SECONDS: "3600", CONSULTATION_JOIN_OPENS_BEFORE_SECONDS: "900" },
    { clock },
  );
  [patient, asha, vikram, admin] = await Promise.all([
    signUpPatient(t),
    staffSession(t, "doctor", { doctorId: "asha-rao" }),
    staffSession(t, "doctor", { doctorId: "vikram-iyer" }),
    staffSession(t, "admin"),
  ]);
});
afterEach(() => clock.reset());
afterAll(async () => {
  await t?.close();
});

const doctorSim = () => t.app.siblings.simulators!.doctor;

describe("the doctor side: start, complete with a summary, and join details for participants only", () => {
  it("runs a consultation from SCHEDULED to COMPLETED", async () => {
    const mine = consultations(t, patient);
    const doctor = consultations(t, asha);
    const { consultation, startMs } = await bookFirstFree(mine, patient.patient, clock);
    const name = consultation.name;

    // Before the join window: nobody gets the link.
    expect(await refusal(mine.getConsultationJoinDetails({ name: `${name}/joinDetails` }))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "JOIN_NOT_OPEN_YET",
    });
    // Another doctor, and an admin, learn nothing.
    const otherDoctor = consultations(t, vikram);
    expect((await refusal(otherDoctor.startConsultation({ name }))).code).toBe(Code.NotFound);
    expect((await refusal(otherDoctor.getConsultationJoinDetails({ name: `${name}/joinDetails` }))).code).toBe(
      Code.NotFound,
    );
    expect(
      (await refusal(consultations(t, admin).getConsultationJoinDetails({ name: `${name}/joinDetails` }))).code,
    ).toBe(Code.PermissionDenied);
    // The patient is not the doctor side.
    expect((await refusal(mine.startConsultation({ name }))).code).toBe(Code.PermissionDenied);
    // Too early to start, and nobody can have missed it yet.
    expect(await refusal(doctor.startConsultation({ name }))).toMatchObject({ reason: "TOO_EARLY_TO_START" });
    expect(await refusal(doctor.markConsultationNoShow({ name }))).toMatchObject({
      reason: "CONSULTATION_NOT_STARTED",
    });

    clock.travelTo(new Date(startMs - 10 * minute));
    const forPatient = (await mine.getConsultationJoinDetails({ name: `${name}/joinDetails` })).joinDetails;
    expect(forPatient).toMatchObject({ participant: ConsultationJoinDetails_Participant.PATIENT });
    expect(forPatient?.joinUri).toMatch(/^https:\/\//);
    const forDoctor = (await doctor.getConsultationJoinDetails({ name: `${name}/joinDetails` })).joinDetails;
    expect(forDoctor?.participant).toBe(ConsultationJoinDetails_Participant.DOCTOR);
    expect(forDoctor?.accessToken).not.toBe(forPatient?.accessToken);

    const started = await doctor.startConsultation({ name, etag: consultation.etag });
    expect(started.consultation?.state).toBe(Consultation_State.ONGOING);
    expect(doctorSim().appointments.get(consultation.appointment).state).toBe(Appointment_State.IN_PROGRESS);
    expect(await refusal(doctor.startConsultation({ name }))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "INVALID_STATE_TRANSITION",
    });

    const completed = await doctor.completeConsultation({
      name,
      summary: { chiefComplaint: "Headache", plan: "Rest" },
    });
    expect(completed.consultation?.state).toBe(Consultation_State.COMPLETED);
    expect(completed.consultation?.summaryRecord).toMatch(new RegExp(`^${patient.patient}/records/`));
    expect(doctorSim().appointments.get(consultation.appointment).state).toBe(Appointment_State.COMPLETED);
    expect((await mine.getConsultation({ name })).consultation?.state).toBe(Consultation_State.COMPLETED);

    // Attaching again replaces it under the same record; a retry with the same request id attaches once.
    const requestId = randomUUID();
    const attached = await doctor.attachConsultationSummary({
      name,
      summary: { assessment: "Tension headache" },
      requestId,
    });
    expect(attached.summaryRecord?.name).toBe(completed.consultation?.summaryRecord);
    expect(attached.summaryRecord?.details.case).toBe("consultationSummary");
    expect(attached.summaryRecord?.author).toMatchObject({
      principal: expect.stringMatching(/^doctors\//),
      role: ActorRole.DOCTOR,
    });
    const retried = await doctor.attachConsultationSummary({
      name,
      summary: { assessment: "Tension headache" },
      requestId,
    });
    expect(retried.consultation?.etag).toBe(attached.consultation?.etag);

    // Completed is final for the patient too.
    expect(await refusal(mine.cancelConsultation({ name }))).toMatchObject({ reason: "INVALID_STATE_TRANSITION" });
    // Doctors list their own consultations across patients; another doctor does not see it.
    const listed = await doctor.listConsultations({ parent: "patients/-" });
    expect(listed.consultations.map((c) => c.name)).toContain(name);
    const others = await otherDoctor.listConsultations({ parent: "patients/-" });
    expect(others.consultations.map((c) => c.name)).not.toContain(name);
  });

  it("lists the patient's consultations in the states asked for", async () => {
    const someone = await signUpPatient(t);
    const mine = consultations(t, someone);
    const kept = (await bookFirstFree(mine, someone.patient, clock)).consultation;
    const dropped = (await bookFirstFree(mine, someone.patient, clock, { doctor: "doctors/vikram-iyer" })).consultation;
    await mine.cancelConsultation({ name: dropped.name });
    const inStates = async (...states: Consultation_State[]) =>
      (await mine.listConsultations({ parent: someone.patient, states })).consultations.map((c) => c.name);
    expect(await inStates(Consultation_State.SCHEDULED)).toEqual([kept.name]);
    expect(await inStates(Consultation_State.CANCELLED)).toEqual([dropped.name]);
    expect((await inStates(Consultation_State.SCHEDULED, Consultation_State.CANCELLED)).sort()).toEqual(
      [kept.name, dropped.name].sort(),
    );
    expect(await inStates(Consultation_State.COMPLETED)).toEqual([]);
  });

  it("marks a consultation the patient missed as NO_SHOW after its start; join details are then refused", async () => {
    const mine = consultations(t, patient);
    const { consultation, startMs } = await bookFirstFree(mine, patient.patient, clock);
    clock.travelTo(new Date(startMs + 5 * minute));
    const missed = await consultations(t, asha).markConsultationNoShow({ name: consultation.name });
    expect(missed.consultation?.state).toBe(Consultation_State.NO_SHOW);
    expect(await refusal(mine.getConsultationJoinDetails({ name: `${consultation.name}/joinDetails` }))).toMatchObject({
      reason: "CONSULTATION_NOT_JOINABLE",
    });
  });
});

describe("the patient's cut-off", () => {
  it("before it the patient cancels; after it the patient cannot cancel or reschedule, the doctor still can cancel", async () => {
    const mine = consultations(t, patient);
    const { consultation, startMs } = await bookFirstFree(mine, patient.patient, clock);
    clock.travelTo(new Date(startMs - 30 * minute));
    expect(await refusal(mine.cancelConsultation({ name: consultation.name }))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "CHANGE_CUTOFF_PASSED",
    });
    const [later] = await freeSlots(mine, "doctors/asha-rao", clock, 60 * minute);
    expect(
      await refusal(
        mine.rescheduleConsultation({ name: consultation.name, slot: later!.name, requestId: randomUUID() }),
      ),
    ).toMatchObject({ reason: "CHANGE_CUTOFF_PASSED" });
    const byDoctor = await consultations(t, asha).cancelConsultation({ name: consultation.name, reason: "Emergency" });
    expect(byDoctor.consultation?.cancellation?.actor?.role).toBe(ActorRole.DOCTOR);

    clock.reset();
    const early = await bookFirstFree(mine, patient.patient, clock);
    clock.travelTo(new Date(early.startMs - 61 * minute));
    const cancelled = await mine.cancelConsultation({ name: early.consultation.name });
    expect(cancelled.consultation?.state).toBe(Consultation_State.CANCELLED);
  });
});

describe("rescheduling", () => {
  it("moves to another free slot of the same doctor; the old slot is free again, a retry moves once", async () => {
    const mine = consultations(t, patient);
    const { consultation, slot } = await bookFirstFree(mine, patient.patient, clock, { doctor: "doctors/meera-nair" });
    const [next] = await freeSlots(mine, "doctors/meera-nair", clock);
    const requestId = randomUUID();
    const moved = await mine.rescheduleConsultation({
      name: consultation.name,
      slot: next!.name,
      requestId,
      etag: consultation.etag,
    });
    expect(moved.consultation).toMatchObject({
      slot: next!.name,
      rescheduleCount: 1,
      state: Consultation_State.SCHEDULED,
    });
    expect(doctorSim().slot(next!.name).state).toBe(Slot_State.BOOKED);
    expect(doctorSim().slot(slot.name).state).toBe(Slot_State.FREE);
    const again = await mine.rescheduleConsultation({ name: consultation.name, slot: next!.name, requestId });
    expect(again.consultation?.rescheduleCount).toBe(1);
    const [otherDoctorSlot] = await freeSlots(mine, "doctors/asha-rao", clock);
    expect(
      await refusal(
        mine.rescheduleConsultation({ name: consultation.name, slot: otherDoctorSlot!.name, requestId: randomUUID() }),
      ),
    ).toMatchObject({ code: Code.InvalidArgument });
  });
});

describe("a guardian booking for a family member", () => {
  async function linked(grants: FamilyGrant[]) {
    const [guardian, dependent] = await Promise.all([signUpPatient(t), signUpPatient(t)]);
    const family = (s: TestSession) =>
      createClient(
        FamilyService,
        createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [s.interceptor] }),
      );
    const { familyLink } = await family(guardian).createFamilyLink({
      parent: guardian.patient,
      familyLink: { dependent: dependent.patient, relationship: FamilyRelationship.PARENT, grants },
      requestId: randomUUID(),
    });
    await family(dependent).acceptFamilyLink({ name: familyLink?.name ?? "" });
    return { guardian, dependent };
  }

  it("with the booking grant: books, and the booking says a guardian made it", async () => {
    const { guardian, dependent } = await linked([FamilyGrant.BOOK_CONSULTATIONS]);
    const { consultation } = await bookFirstFree(consultations(t, guardian), dependent.patient, clock, {
      doctor: "doctors/omar-haddad",
    });
    expect(consultation.name.startsWith(`${dependent.patient}/`)).toBe(true);
    expect(consultation.bookedBy).toMatchObject({ principal: guardian.patient, role: ActorRole.GUARDIAN });
    const read = await consultations(t, dependent).getConsultation({ name: consultation.name });
    expect(read.consultation?.state).toBe(Consultation_State.SCHEDULED);
  });

  it("without it: NOT_FOUND, as for a stranger", async () => {
    const { guardian, dependent } = await linked([FamilyGrant.VIEW_RECORDS]);
    const [slot] = await freeSlots(consultations(t, guardian), "doctors/omar-haddad", clock);
    const refused = await refusal(
      consultations(t, guardian).createConsultation({
        parent: dependent.patient,
        consultation: { doctor: "doctors/omar-haddad", slot: slot!.name, mode: ConsultationMode.VIDEO },
        requestId: randomUUID(),
      }),
    );
    expect(refused.code).toBe(Code.NotFound);
    expect(doctorSim().slot(slot!.name).state).toBe(Slot_State.FREE);
  });
});
