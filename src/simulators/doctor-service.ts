import { durationMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { DoctorService } from "../../gen/telemed/doctor/v1/doctor_service_pb.js";
import type { Clock } from "../shared/clock.ts";
import { type DoctorProfile, modesOf, speaks, toDoctor } from "./doctor-directory.ts";
import type { DoctorSimulator } from "./doctor-simulator.ts";
import type { ServiceHandlers } from "./grpc-js-service.ts";
import { pageOf } from "./paging.ts";

/** ListDoctors looks for free time at most this far ahead (the ListSlots window limit). */
const availabilitySearchMs = 31 * 86_400_000;

/**
 * The DoctorService RPCs over a DoctorSimulator: unwrap the request, call the
 * simulator, wrap the answer. Contract rules (patterns, ranges, required fields) were
 * already checked by protovalidate; the rules that need state live in the simulator.
 */
export function doctorHandlers(doctor: DoctorSimulator, clock: Clock): ServiceHandlers<typeof DoctorService> {
  return {
    listSpecialities(request) {
      const page = pageOf(doctor.specialities(), request, {
        scope: "specialities",
        defaultSize: 100,
        maxSize: 500,
        cursorOf: (s) => s.name,
        isAfter: (s, cursor) => s.name > cursor,
      });
      return { specialities: page.items, nextPageToken: page.nextPageToken };
    },

    listDoctors(request) {
      const window = availabilityWindow(request, clock.now().getTime());
      const matches = doctor
        .doctors()
        .filter(
          (profile: DoctorProfile) =>
            (request.speciality === "" || profile.specialities.includes(request.speciality)) &&
            (request.language === "" || speaks(profile, request.language)) &&
            (request.mode === 0 || modesOf(profile).includes(request.mode)) &&
            (window === undefined || doctor.hasFreeSlot(profile, window.fromMs, window.toMs)),
        );
      const page = pageOf(matches, request, {
        scope: JSON.stringify(["doctors", request.speciality, request.language, request.mode, window ?? null]),
        defaultSize: 25,
        maxSize: 100,
        cursorOf: (p) => p.id,
        isAfter: (p, cursor) => p.id > cursor,
      });
      return { doctors: page.items.map(toDoctor), nextPageToken: page.nextPageToken };
    },

    getDoctor(request) {
      return { doctor: toDoctor(doctor.doctor(idOf(request.name))) };
    },

    listSlots(request) {
      const fromMs = timestampMs(request.startTime!);
      const toMs = timestampMs(request.endTime!);
      const slots = doctor
        .slots(idOf(request.parent), fromMs, toMs)
        .filter((slot) => request.states.length === 0 || request.states.includes(slot.state));
      const page = pageOf(slots, request, {
        scope: JSON.stringify([request.parent, fromMs, toMs, request.states]),
        defaultSize: 50,
        maxSize: 500,
        cursorOf: (slot) => String(timestampMs(slot.startTime!)),
        isAfter: (slot, cursor) => timestampMs(slot.startTime!) > Number(cursor),
      });
      return { slots: page.items, nextPageToken: page.nextPageToken };
    },

    holdSlot(request) {
      return { hold: doctor.hold(request.slot, durationMs(request.ttl!), request.mode, request.requestId) };
    },

    confirmSlot(request) {
      const appointment = doctor.confirm(
        request.slot,
        request.holdId,
        request.bookingReference,
        request.patientReference,
      );
      return { appointment };
    },

    releaseSlot(request) {
      doctor.release(request.slot, request.holdId);
      return {};
    },

    getAppointment(request) {
      return { appointment: doctor.appointments.get(request.name) };
    },

    cancelAppointment(request) {
      return { appointment: doctor.appointments.cancel(request.name) };
    },

    startAppointment(request) {
      return { appointment: doctor.appointments.start(request.name) };
    },

    completeAppointment(request) {
      return { appointment: doctor.appointments.complete(request.name) };
    },

    getJoinInfo(request) {
      return { joinInfo: doctor.appointments.joinInfo(request.appointment, request.participant) };
    },
  };
}

/** The window ListDoctors searches for a FREE slot, or undefined when it has no time filter. */
function availabilityWindow(
  request: {
    availableStartTime?: Parameters<typeof timestampMs>[0];
    availableEndTime?: Parameters<typeof timestampMs>[0];
  },
  nowMs: number,
): { fromMs: number; toMs: number } | undefined {
  if (!request.availableStartTime && !request.availableEndTime) return undefined;
  const fromMs = request.availableStartTime ? timestampMs(request.availableStartTime) : nowMs;
  const toMs = request.availableEndTime ? timestampMs(request.availableEndTime) : fromMs + availabilitySearchMs;
  return { fromMs, toMs: Math.min(toMs, fromMs + availabilitySearchMs) };
}

/** The last segment of a validated resource name, `doctors/{id}` -> `id`. */
function idOf(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}
