import { clone, create } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import {
  type Appointment,
  Appointment_State,
  AppointmentSchema,
  type JoinInfo,
  JoinInfoSchema,
  type Mode,
  ParticipantRole,
} from "../../gen/telemed/doctor/v1/doctor_pb.js";
import type { Clock } from "../shared/clock.ts";
import type { SeededRandom } from "./seeded-random.ts";
import { failedPrecondition, notFound, SimulatorError } from "./simulator-errors.ts";

/** What ConfirmSlot books. */
export interface NewAppointment {
  readonly doctorId: string;
  readonly slot: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly mode: Mode;
  readonly price: { readonly amountMinor: bigint; readonly currencyCode: string };
  readonly bookingReference: string;
  readonly patientReference: string;
}

/** Options of the appointment book. */
export interface DoctorAppointmentsOptions {
  readonly clock: Clock;
  readonly random: SeededRandom;
  /** Called when a cancellation frees the appointment's slot. */
  readonly freeSlot: (slot: string, appointment: string) => void;
  /** How long before the start join details are handed out; 15 minutes by default. */
  readonly joinOpensBeforeMs?: number;
  /** How long after the end they stay valid; 30 minutes by default (consultations overrun). */
  readonly joinClosesAfterMs?: number;
}

const minute = 60_000;

/**
 * The Doctor Service's appointments: BOOKED -> IN_PROGRESS -> COMPLETED and
 * BOOKED -> CANCELLED (which frees the slot). Repeating a transition that already
 * happened returns the appointment unchanged, so callers can retry after a lost
 * response; any other transition is FAILED_PRECONDITION.
 */
export class DoctorAppointments {
  readonly #clock: Clock;
  readonly #random: SeededRandom;
  readonly #freeSlot: DoctorAppointmentsOptions["freeSlot"];
  readonly #opensBeforeMs: number;
  readonly #closesAfterMs: number;
  readonly #byName = new Map<string, Appointment>();
  /** The live (not cancelled) appointment of each booking reference: `book` checks it without a scan. */
  readonly #liveByReference = new Map<string, Appointment>();
  /** Signs meeting tokens; per instance, so two simulators never accept each other's. */
  readonly #secret: KeyObject;

  constructor(options: DoctorAppointmentsOptions) {
    this.#clock = options.clock;
    this.#random = options.random;
    this.#freeSlot = options.freeSlot;
    this.#opensBeforeMs = options.joinOpensBeforeMs ?? 15 * minute;
    this.#closesAfterMs = options.joinClosesAfterMs ?? 30 * minute;
    this.#secret = createSecretKey(Buffer.from(options.random.id(32), "utf8"));
  }

  /** Books a held slot; ALREADY_EXISTS when the booking reference has another live appointment. */
  book(request: NewAppointment): Appointment {
    const taken = this.#liveByReference.get(request.bookingReference);
    if (taken !== undefined && taken.state !== Appointment_State.CANCELLED) {
      throw new SimulatorError(
        grpc.status.ALREADY_EXISTS,
        "BOOKING_REFERENCE_IN_USE",
        "This booking already has an appointment; cancel it first.",
        { metadata: { appointment: taken.name } },
      );
    }
    const now = timestampFromMs(this.#clock.now().getTime());
    const appointment = create(AppointmentSchema, {
      name: `doctors/${request.doctorId}/appointments/${this.#random.id(16)}`,
      slot: request.slot,
      bookingReference: request.bookingReference,
      patientReference: request.patientReference,
      mode: request.mode,
      price: { amountMinor: request.price.amountMinor, currencyCode: request.price.currencyCode },
      state: Appointment_State.BOOKED,
      startTime: timestampFromMs(request.startMs),
      endTime: timestampFromMs(request.endMs),
      createTime: now,
      updateTime: now,
    });
    this.#byName.set(appointment.name, appointment);
    this.#liveByReference.set(appointment.bookingReference, appointment);
    return clone(AppointmentSchema, appointment);
  }

  /** An appointment by name; NOT_FOUND when there is none. */
  get(name: string): Appointment {
    return clone(AppointmentSchema, this.#find(name));
  }

  /** Every appointment in booking order (tests check, for example, that a race booked one). */
  list(): Appointment[] {
    return [...this.#byName.values()].map((a) => clone(AppointmentSchema, a));
  }

  /** BOOKED -> CANCELLED; the slot becomes FREE. */
  cancel(name: string): Appointment {
    const appointment = this.#transition(name, [Appointment_State.BOOKED], Appointment_State.CANCELLED);
    if (this.#liveByReference.get(appointment.bookingReference)?.name === appointment.name) {
      this.#liveByReference.delete(appointment.bookingReference);
    }
    this.#freeSlot(appointment.slot, appointment.name);
    return appointment;
  }

  /** Doctor side: BOOKED -> IN_PROGRESS. */
  start(name: string): Appointment {
    return this.#transition(name, [Appointment_State.BOOKED], Appointment_State.IN_PROGRESS);
  }

  /** Doctor side: IN_PROGRESS -> COMPLETED. */
  complete(name: string): Appointment {
    return this.#transition(name, [Appointment_State.IN_PROGRESS], Appointment_State.COMPLETED);
  }

  /**
   * Meeting details for one participant, only from shortly before the start until
   * shortly after the end, and only for a BOOKED or IN_PROGRESS appointment: anything
   * else is FAILED_PRECONDITION with the opening time in the error's metadata.
   */
  joinInfo(name: string, role: ParticipantRole): JoinInfo {
    const appointment = this.#find(name);
    if (appointment.state !== Appointment_State.BOOKED && appointment.state !== Appointment_State.IN_PROGRESS) {
      throw failedPrecondition("APPOINTMENT_NOT_JOINABLE", "This appointment is not open for joining.");
    }
    const validFrom = ms(appointment.startTime) - this.#opensBeforeMs;
    const expire = ms(appointment.endTime) + this.#closesAfterMs;
    const now = this.#clock.now().getTime();
    if (now < validFrom) {
      const opens = new Date(validFrom).toISOString();
      throw failedPrecondition("JOIN_NOT_OPEN_YET", `Joining opens at ${opens}.`, { valid_from_time: opens });
    }
    if (now > expire) throw failedPrecondition("JOIN_CLOSED", "This appointment's meeting has closed.");
    const meeting = this.#sign(`meeting:${appointment.name}`).slice(0, 20);
    const payload = Buffer.from(
      JSON.stringify({ apt: appointment.name, role: ParticipantRole[role], nbf: validFrom, exp: expire }),
    ).toString("base64url");
    return create(JoinInfoSchema, {
      joinUri: `https://meet.doctor.sim.telemed.example/r/${meeting}`,
      accessToken: `${payload}.${this.#sign(payload)}`,
      validFromTime: timestampFromMs(validFrom),
      expireTime: timestampFromMs(expire),
    });
  }

  #transition(name: string, from: Appointment_State[], to: Appointment_State): Appointment {
    const appointment = this.#find(name);
    if (appointment.state !== to) {
      if (!from.includes(appointment.state)) {
        throw failedPrecondition(
          "INVALID_APPOINTMENT_TRANSITION",
          `An appointment that is ${Appointment_State[appointment.state]} cannot become ${Appointment_State[to]}.`,
          { state: Appointment_State[appointment.state] },
        );
      }
      appointment.state = to;
      appointment.updateTime = timestampFromMs(this.#clock.now().getTime());
    }
    return clone(AppointmentSchema, appointment);
  }

  #find(name: string): Appointment {
    const appointment = this.#byName.get(name);
    if (!appointment) throw notFound("Appointment", name);
    return appointment;
  }

  #sign(text: string): string {
    return createHmac("sha256", this.#secret).update(text).digest("base64url");
  }
}

function ms(timestamp: Timestamp | undefined): number {
  return timestamp ? timestampMs(timestamp) : 0;
}
