import { timestampDate, timestampFromDate, durationFromMs } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Appointment_State, Mode, ParticipantRole, Slot_State } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import { DoctorService } from "../../gen/telemed/doctor/v1/doctor_service_pb.js";
import { createGrpcJsClient, grpcUnary } from "../support/grpc-js-client.ts";
import { describeRefusal, monday, refusal, type SimulatorHarness, startHarness } from "./simulator-fixtures.ts";

const at = (iso: string) => timestampFromDate(new Date(iso));
const minutes = (n: number) => durationFromMs(n * 60_000);

let h: SimulatorHarness;
beforeAll(async () => {
  h = await startHarness(monday);
});
afterAll(async () => {
  await h?.close();
});

/** A fresh booking reference and patient, so tests never share a booking. */
function booking() {
  const id = randomUUID().slice(0, 8);
  return { bookingReference: `patients/p-${id}/consultations/c-${id}`, patientReference: `patients/p-${id}` };
}

describe("doctor directory", () => {
  it("lists the seeded specialities and pages the doctors", async () => {
    const { specialities } = await h.clients.doctor.listSpecialities({});
    expect(specialities.map((s) => s.name)).toContain("specialities/cardiology");

    const first = await h.clients.doctor.listDoctors({ pageSize: 5 });
    expect(first.doctors).toHaveLength(5);
    const second = await h.clients.doctor.listDoctors({ pageSize: 5, pageToken: first.nextPageToken });
    expect(second.nextPageToken).toBe("");
    const all = [...first.doctors, ...second.doctors];
    expect(all).toHaveLength(8);
    expect(new Set(all.map((d) => d.timeZone)).size).toBeGreaterThanOrEqual(5);
    expect(all.every((d) => d.prices.length > 0 && d.prices.every((p) => p.price!.amountMinor > 0n))).toBe(true);
  });

  it("filters by speciality, language (BCP 47 prefix) and mode", async () => {
    const cardiology = await h.clients.doctor.listDoctors({ speciality: "cardiology" });
    expect(cardiology.doctors.map((d) => d.name)).toEqual(["doctors/asha-rao", "doctors/omar-haddad"]);
    const german = await h.clients.doctor.listDoctors({ language: "de-DE" });
    expect(german.doctors.map((d) => d.name)).toEqual(["doctors/lena-fischer"]);
    const chat = await h.clients.doctor.listDoctors({ mode: Mode.CHAT, language: "en" });
    expect(chat.doctors.map((d) => d.name).sort()).toEqual([
      "doctors/lena-fischer",
      "doctors/vikram-iyer",
      "doctors/wei-tan",
    ]);
  });

  it("filters by free time, leaving out the doctor on leave and doctors who do not work then", async () => {
    // Saturday 12 January 2030, 04:00-08:00 UTC: only doctors working Saturday mornings in Asia.
    const saturday = await h.clients.doctor.listDoctors({
      availableStartTime: at("2030-01-12T04:00:00Z"),
      availableEndTime: at("2030-01-12T08:00:00Z"),
    });
    expect(saturday.doctors.map((d) => d.name).sort()).toEqual(["doctors/meera-nair", "doctors/vikram-iyer"]);
    const weiTan = await h.clients.doctor.getDoctor({ name: "doctors/wei-tan" });
    expect(weiTan.doctor?.acceptingBookings).toBe(false);
  });

  it("answers NOT_FOUND for an unknown doctor, with ErrorInfo from the doctor domain, also to a grpc-js client", async () => {
    const error = await refusal(h.clients.doctor.getDoctor({ name: "doctors/nobody" }));
    expect(describeRefusal(error)).toEqual({
      code: "NotFound",
      reason: "DOCTOR_NOT_FOUND",
      domain: "doctor.telemed.example",
    });

    const grpcJs = createGrpcJsClient(DoctorService, h.sims.url.replace("http://", ""));
    try {
      const { doctor } = await grpcUnary(grpcJs, DoctorService.method.getDoctor, { name: "doctors/asha-rao" });
      expect(doctor?.languages).toContain("kn");
      await expect(grpcUnary(grpcJs, DoctorService.method.getDoctor, { name: "nope" })).rejects.toMatchObject({
        code: 3, // INVALID_ARGUMENT: the contract's pattern, checked by protovalidate
      });
    } finally {
      grpcJs.close();
    }
  });
});

describe("doctor slots", () => {
  it("derives slots from working hours in the doctor's time zone, following daylight saving time", async () => {
    const winter = await h.clients.doctor.listSlots({
      parent: "doctors/james-okafor",
      startTime: at("2030-01-07T00:00:00Z"),
      endTime: at("2030-01-08T00:00:00Z"),
    });
    expect(winter.slots.map((s) => s.name.split("/").at(-1))).toEqual([
      "20300107T0800Z",
      "20300107T0830Z",
      "20300107T0900Z",
      "20300107T0930Z",
      "20300107T1000Z",
      "20300107T1030Z",
      "20300107T1100Z",
      "20300107T1130Z",
    ]);
    expect(winter.slots.every((s) => s.state === Slot_State.FREE)).toBe(true);
    // 08:00 in London is 07:00 UTC in July (BST).
    const summer = await h.clients.doctor.listSlots({
      parent: "doctors/james-okafor",
      startTime: at("2030-07-01T00:00:00Z"),
      endTime: at("2030-07-02T00:00:00Z"),
    });
    expect(timestampDate(summer.slots[0]!.startTime!).toISOString()).toBe("2030-07-01T07:00:00.000Z");
    // Kolkata has no DST: 09:00 IST is 03:30 UTC.
    const kolkata = await h.clients.doctor.listSlots({
      parent: "doctors/asha-rao",
      startTime: at("2030-01-07T00:00:00Z"),
      endTime: at("2030-01-08T00:00:00Z"),
      pageSize: 1,
    });
    expect(timestampDate(kolkata.slots[0]!.startTime!).toISOString()).toBe("2030-01-07T03:30:00.000Z");
  });

  it("pages a month of slots without repeats, filters by state, and refuses windows over 31 days", async () => {
    const window = {
      parent: "doctors/sofia-martinez",
      startTime: at("2030-01-07T00:00:00Z"),
      endTime: at("2030-02-06T00:00:00Z"),
    };
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await h.clients.doctor.listSlots({ ...window, pageSize: 100, pageToken });
      seen.push(...page.slots.map((s) => s.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen.length).toBe(new Set(seen).size);
    // Mon-Thu from 7 Jan to 5 Feb (New York time) is 18 days of 16 half-hour slots.
    expect(seen.length).toBe(18 * 16);
    const booked = await h.clients.doctor.listSlots({ ...window, states: [Slot_State.BOOKED] });
    expect(booked.slots).toEqual([]);
    const tooLong = await refusal(h.clients.doctor.listSlots({ ...window, endTime: at("2030-02-08T00:00:00Z") }));
    expect(describeRefusal(tooLong).code).toBe("InvalidArgument");
  });
});

describe("slot hold, confirm, release", () => {
  it("holds a free slot, confirms it into an appointment, and confirming again returns the same appointment", async () => {
    const slot = "doctors/asha-rao/slots/20300108T0330Z";
    const requestId = randomUUID();
    const { hold } = await h.clients.doctor.holdSlot({ slot, ttl: minutes(2), mode: Mode.VIDEO, requestId });
    expect(timestampDate(hold!.expireTime!).toISOString()).toBe("2030-01-07T00:02:00.000Z");
    expect(timestampDate(hold!.slotStartTime!).toISOString()).toBe("2030-01-08T03:30:00.000Z");
    expect(timestampDate(hold!.slotEndTime!).toISOString()).toBe("2030-01-08T04:00:00.000Z");
    const retried = await h.clients.doctor.holdSlot({ slot, ttl: minutes(2), mode: Mode.VIDEO, requestId });
    expect(retried.hold?.holdId).toBe(hold!.holdId);
    expect(h.sims.doctor.slot(slot).state).toBe(Slot_State.HELD);

    const ref = booking();
    const { appointment } = await h.clients.doctor.confirmSlot({ slot, holdId: hold!.holdId, ...ref });
    expect(appointment).toMatchObject({ slot, state: Appointment_State.BOOKED, mode: Mode.VIDEO, ...ref });
    expect(appointment?.price).toMatchObject({ amountMinor: 80000n, currencyCode: "INR" });
    const again = await h.clients.doctor.confirmSlot({ slot, holdId: hold!.holdId, ...ref });
    expect(again.appointment?.name).toBe(appointment!.name);
    expect(h.sims.doctor.slot(slot).state).toBe(Slot_State.BOOKED);

    const taken = await refusal(
      h.clients.doctor.holdSlot({ slot, ttl: minutes(1), mode: Mode.VIDEO, requestId: randomUUID() }),
    );
    expect(describeRefusal(taken)).toMatchObject({ code: "FailedPrecondition", reason: "SLOT_BOOKED" });
    const otherBooking = await refusal(h.clients.doctor.confirmSlot({ slot, holdId: hold!.holdId, ...booking() }));
    expect(describeRefusal(otherBooking)).toMatchObject({
      code: "FailedPrecondition",
      reason: "HOLD_ALREADY_CONFIRMED",
    });
  });

  it("releases a hold (idempotently), which frees the slot and makes the hold unconfirmable", async () => {
    const slot = "doctors/asha-rao/slots/20300108T0400Z";
    const { hold } = await h.clients.doctor.holdSlot({
      slot,
      ttl: minutes(1),
      mode: Mode.AUDIO,
      requestId: randomUUID(),
    });
    await h.clients.doctor.releaseSlot({ slot, holdId: hold!.holdId });
    await h.clients.doctor.releaseSlot({ slot, holdId: hold!.holdId });
    expect(h.sims.doctor.slot(slot).state).toBe(Slot_State.FREE);
    const late = await refusal(h.clients.doctor.confirmSlot({ slot, holdId: hold!.holdId, ...booking() }));
    expect(describeRefusal(late)).toMatchObject({ code: "FailedPrecondition", reason: "HOLD_RELEASED" });
    const unknown = await refusal(h.clients.doctor.releaseSlot({ slot, holdId: "no-such-hold" }));
    expect(describeRefusal(unknown).code).toBe("NotFound");
  });

  it("refuses slots that do not exist, modes the doctor does not offer, and a doctor on leave", async () => {
    const offGrid = await refusal(
      h.clients.doctor.holdSlot({
        slot: "doctors/asha-rao/slots/20300108T0345Z",
        ttl: minutes(1),
        mode: Mode.VIDEO,
        requestId: randomUUID(),
      }),
    );
    expect(describeRefusal(offGrid)).toMatchObject({ code: "NotFound", reason: "SLOT_NOT_FOUND" });
    const chat = await refusal(
      h.clients.doctor.holdSlot({
        slot: "doctors/asha-rao/slots/20300108T0430Z",
        ttl: minutes(1),
        mode: Mode.CHAT,
        requestId: randomUUID(),
      }),
    );
    expect(describeRefusal(chat)).toMatchObject({ code: "InvalidArgument", reason: "MODE_NOT_OFFERED" });
    const onLeave = await refusal(
      h.clients.doctor.holdSlot({
        slot: "doctors/wei-tan/slots/20300108T0000Z",
        ttl: minutes(1),
        mode: Mode.VIDEO,
        requestId: randomUUID(),
      }),
    );
    expect(describeRefusal(onLeave)).toMatchObject({
      code: "FailedPrecondition",
      reason: "DOCTOR_NOT_ACCEPTING_BOOKINGS",
    });
    const ttl = await refusal(
      h.clients.doctor.holdSlot({
        slot: "doctors/asha-rao/slots/20300108T0430Z",
        ttl: minutes(11),
        mode: Mode.VIDEO,
        requestId: randomUUID(),
      }),
    );
    expect(describeRefusal(ttl).code).toBe("InvalidArgument");
  });

  it("a hold race: of 32 concurrent holds of one slot (Connect and grpc-js clients), exactly one wins", async () => {
    const slot = "doctors/omar-haddad/slots/20300108T0500Z";
    const grpcJs = createGrpcJsClient(DoctorService, h.sims.url.replace("http://", ""));
    try {
      const attempts = Array.from({ length: 32 }, (_, i) => {
        const request = { slot, ttl: minutes(5), mode: Mode.VIDEO, requestId: randomUUID() };
        return i % 2 === 0
          ? h.clients.doctor.holdSlot(request)
          : grpcUnary(grpcJs, DoctorService.method.holdSlot, request);
      });
      const outcomes = await Promise.allSettled(attempts);
      const won = outcomes.filter((o) => o.status === "fulfilled");
      expect(won).toHaveLength(1);
      const lost = outcomes.filter((o) => o.status === "rejected") as PromiseRejectedResult[];
      expect(lost.every((o) => o.reason.code === 9 /* FAILED_PRECONDITION in both clients */)).toBe(true);
    } finally {
      grpcJs.close();
    }
  });

  it("a hold that lapses (injected clock) frees the slot and can no longer be confirmed", async () => {
    const slot = "doctors/meera-nair/slots/20300108T0330Z";
    const { hold } = await h.clients.doctor.holdSlot({
      slot,
      ttl: durationFromMs(30_000),
      mode: Mode.VIDEO,
      requestId: randomUUID(),
    });
    h.clock.advance(29_000);
    const stillHeld = await refusal(
      h.clients.doctor.holdSlot({ slot, ttl: minutes(1), mode: Mode.VIDEO, requestId: randomUUID() }),
    );
    expect(describeRefusal(stillHeld)).toMatchObject({ code: "FailedPrecondition", reason: "SLOT_HELD" });
    h.clock.advance(2_000);
    const listed = await h.clients.doctor.listSlots({
      parent: "doctors/meera-nair",
      startTime: at("2030-01-08T03:30:00Z"),
      endTime: at("2030-01-08T04:00:00Z"),
    });
    expect(listed.slots.map((s) => s.state)).toEqual([Slot_State.FREE]);
    const lapsed = await refusal(h.clients.doctor.confirmSlot({ slot, holdId: hold!.holdId, ...booking() }));
    expect(describeRefusal(lapsed)).toMatchObject({ code: "FailedPrecondition", reason: "HOLD_EXPIRED" });
    const next = await h.clients.doctor.holdSlot({ slot, ttl: minutes(1), mode: Mode.AUDIO, requestId: randomUUID() });
    expect(next.hold?.holdId).not.toBe(hold!.holdId);
  });
});

describe("appointments and join info", () => {
  async function book(slot: string) {
    const { hold } = await h.clients.doctor.holdSlot({
      slot,
      ttl: minutes(5),
      mode: Mode.VIDEO,
      requestId: randomUUID(),
    });
    const { appointment } = await h.clients.doctor.confirmSlot({ slot, holdId: hold!.holdId, ...booking() });
    return appointment!;
  }

  it("gives join details only from 15 minutes before the start to 30 minutes after the end", async () => {
    h.clock.set("2030-01-09T00:00:00Z");
    const appointment = await book("doctors/james-okafor/slots/20300109T0800Z");
    const ask = (participant: ParticipantRole) =>
      h.clients.doctor.getJoinInfo({ appointment: appointment.name, participant });

    h.clock.set("2030-01-09T07:44:59Z");
    const early = await refusal(ask(ParticipantRole.PATIENT));
    expect(describeRefusal(early)).toMatchObject({ code: "FailedPrecondition", reason: "JOIN_NOT_OPEN_YET" });
    expect(early.rawMessage).toContain("2030-01-09T07:45:00.000Z");

    h.clock.set("2030-01-09T07:45:00Z");
    const patient = (await ask(ParticipantRole.PATIENT)).joinInfo!;
    const doctor = (await ask(ParticipantRole.DOCTOR)).joinInfo!;
    expect(patient.joinUri).toMatch(/^https:\/\//);
    expect(doctor.joinUri).toBe(patient.joinUri);
    expect(doctor.accessToken).not.toBe(patient.accessToken);
    expect(timestampDate(patient.validFromTime!).toISOString()).toBe("2030-01-09T07:45:00.000Z");
    expect(timestampDate(patient.expireTime!).toISOString()).toBe("2030-01-09T09:00:00.000Z");

    h.clock.set("2030-01-09T09:00:01Z");
    const late = await refusal(ask(ParticipantRole.PATIENT));
    expect(describeRefusal(late)).toMatchObject({ code: "FailedPrecondition", reason: "JOIN_CLOSED" });
  });

  it("moves BOOKED -> IN_PROGRESS -> COMPLETED, refuses illegal transitions, and cancelling frees the slot", async () => {
    h.clock.set("2030-01-09T00:00:00Z");
    const done = await book("doctors/james-okafor/slots/20300109T0900Z");
    expect((await h.clients.doctor.startAppointment({ name: done.name })).appointment?.state).toBe(
      Appointment_State.IN_PROGRESS,
    );
    const noCancel = await refusal(h.clients.doctor.cancelAppointment({ name: done.name }));
    expect(describeRefusal(noCancel)).toMatchObject({
      code: "FailedPrecondition",
      reason: "INVALID_APPOINTMENT_TRANSITION",
    });
    expect((await h.clients.doctor.completeAppointment({ name: done.name })).appointment?.state).toBe(
      Appointment_State.COMPLETED,
    );
    expect((await h.clients.doctor.completeAppointment({ name: done.name })).appointment?.state).toBe(
      Appointment_State.COMPLETED,
    );

    const slot = "doctors/james-okafor/slots/20300109T0930Z";
    const cancelled = await book(slot);
    const { appointment } = await h.clients.doctor.cancelAppointment({ name: cancelled.name, reason: "patient asked" });
    expect(appointment?.state).toBe(Appointment_State.CANCELLED);
    expect((await h.clients.doctor.getAppointment({ name: cancelled.name })).appointment?.state).toBe(
      Appointment_State.CANCELLED,
    );
    expect(h.sims.doctor.slot(slot).state).toBe(Slot_State.FREE);
    const noJoin = await refusal(
      h.clients.doctor.getJoinInfo({ appointment: cancelled.name, participant: ParticipantRole.PATIENT }),
    );
    expect(describeRefusal(noJoin).reason).toBe("APPOINTMENT_NOT_JOINABLE");
    const rebooked = await book(slot);
    expect(rebooked.name).not.toBe(cancelled.name);
    expect(
      h.sims.doctor.appointments.list().filter((a) => a.slot === slot && a.state === Appointment_State.BOOKED),
    ).toHaveLength(1);
  });
});
