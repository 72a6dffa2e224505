import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Appointment,
  type Mode,
  type Slot,
  Slot_State,
  type SlotHold,
  SlotHoldSchema,
  SlotSchema,
  type Speciality,
} from "../../gen/telemed/doctor/v1/doctor_pb.js";
import type { Clock } from "../shared/clock.ts";
import { DoctorCalendar, type GridSlot } from "./doctor-calendar.ts";
import { type DoctorProfile, modesOf, seedDoctors, seedSpecialities, toSpecialities } from "./doctor-directory.ts";
import type { SeededRandom } from "./seeded-random.ts";
import { DoctorAppointments } from "./doctor-appointments.ts";
import { failedPrecondition, invalidField, notFound } from "./simulator-errors.ts";

/** Options of a Doctor Service simulator. */
export interface DoctorSimulatorOptions {
  readonly clock: Clock;
  readonly random: SeededRandom;
  /** The directory; the seeded eight doctors when unset. */
  readonly doctors?: DoctorProfile[];
}

interface HoldRecord {
  readonly holdId: string;
  readonly slot: string;
  readonly grid: GridSlot;
  readonly doctor: DoctorProfile;
  readonly mode: Mode;
  readonly requestId: string;
  readonly expireMs: number;
  status: "active" | "released" | "confirmed";
  appointment?: string;
}

type Claim =
  | { readonly kind: "hold"; readonly hold: HoldRecord }
  | { readonly kind: "booked"; readonly appointment: string };

const slotNamePattern = /^doctors\/([A-Za-z0-9_-]{1,64})\/slots\/([A-Za-z0-9_-]{1,64})$/;

/**
 * The Doctor Service's state and rules, in memory: the directory, slots derived from
 * working hours, holds with a ttl, and appointments. Time comes from the injected clock
 * and holds lapse lazily when read, so a test moves the clock instead of sleeping.
 * Node runs each call to completion, so two holds of one slot can never both win.
 */
export class DoctorSimulator {
  readonly #clock: Clock;
  readonly #random: SeededRandom;
  readonly #calendar = new DoctorCalendar();
  readonly #doctors: Map<string, DoctorProfile>;
  readonly #holds = new Map<string, HoldRecord>();
  readonly #holdByRequest = new Map<string, HoldRecord>();
  readonly #claims = new Map<string, Claim>();
  readonly #away: Array<{ doctorId: string; startMs: number; endMs: number }> = [];
  /** Appointments, their state machine and meetings. */
  readonly appointments: DoctorAppointments;

  constructor(options: DoctorSimulatorOptions) {
    this.#clock = options.clock;
    this.#random = options.random;
    this.#doctors = new Map((options.doctors ?? seedDoctors()).map((d) => [d.id, d]));
    this.appointments = new DoctorAppointments({
      clock: options.clock,
      random: options.random,
      freeSlot: (slot, appointment) => {
        const claim = this.#claims.get(slot);
        if (claim?.kind === "booked" && claim.appointment === appointment) this.#claims.delete(slot);
      },
    });
  }

  /** The specialities of the directory, by code. */
  specialities(): Speciality[] {
    return toSpecialities(seedSpecialities);
  }

  /** Every doctor, ordered by id. */
  doctors(): DoctorProfile[] {
    return [...this.#doctors.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** A doctor by id; NOT_FOUND when there is none. */
  doctor(id: string): DoctorProfile {
    const profile = this.#doctors.get(id);
    if (!profile) throw notFound("Doctor", `doctors/${id}`);
    return profile;
  }

  /** The slots of a doctor starting in [fromMs, toMs), in start order, with their current state. */
  slots(doctorId: string, fromMs: number, toMs: number): Slot[] {
    const profile = this.doctor(doctorId);
    return this.#calendar.slots(profile, fromMs, toMs).map((grid) => this.#toSlot(profile, grid));
  }

  /** One slot by name, with its current state (tests use it to check what a booking did). */
  slot(name: string): Slot {
    const { profile, grid } = this.#resolve(name);
    return this.#toSlot(profile, grid);
  }

  /** True when the doctor has a FREE slot starting in [fromMs, toMs). */
  hasFreeSlot(profile: DoctorProfile, fromMs: number, toMs: number): boolean {
    return this.#calendar
      .slots(profile, fromMs, toMs)
      .some((grid) => this.#stateOf(profile, grid).state === Slot_State.FREE);
  }

  /**
   * Holds a FREE slot for `ttlMs`. A retry with the same request id returns the same
   * hold; a slot held or booked by anyone else is FAILED_PRECONDITION, as the contract says.
   */
  hold(slot: string, ttlMs: number, mode: Mode, requestId: string): SlotHold {
    const { profile, grid } = this.#resolve(slot);
    const previous = this.#holdByRequest.get(requestId);
    if (previous) {
      if (previous.slot !== slot || previous.mode !== mode) {
        throw invalidField("request_id", "was already used for a hold of another slot or mode", "REQUEST_ID_REUSED");
      }
      return toSlotHold(previous);
    }
    if (!modesOf(profile).includes(mode)) {
      throw invalidField("mode", `${profile.displayName} does not offer this consultation mode`, "MODE_NOT_OFFERED");
    }
    const { state, reason } = this.#stateOf(profile, grid);
    if (state !== Slot_State.FREE) {
      throw failedPrecondition(reason, "This time is no longer available. Please choose another slot.", { slot });
    }
    const record: HoldRecord = {
      holdId: this.#random.id(22),
      slot,
      grid,
      doctor: profile,
      mode,
      requestId,
      expireMs: this.#now() + ttlMs,
      status: "active",
    };
    this.#holds.set(record.holdId, record);
    this.#holdByRequest.set(requestId, record);
    this.#claims.set(slot, { kind: "hold", hold: record });
    return toSlotHold(record);
  }

  /**
   * Turns an active hold into a BOOKED appointment. Confirming the same hold with the
   * same booking reference again returns the same appointment; a lapsed or released
   * hold is FAILED_PRECONDITION; a booking reference that already has another active
   * appointment is ALREADY_EXISTS.
   */
  confirm(slot: string, holdId: string, bookingReference: string, patientReference: string): Appointment {
    const hold = this.#holdOf(slot, holdId);
    if (hold.status === "confirmed") {
      const existing = this.appointments.get(hold.appointment as string);
      if (existing.bookingReference === bookingReference) return existing;
      throw failedPrecondition("HOLD_ALREADY_CONFIRMED", "This hold was confirmed for another booking.", { slot });
    }
    if (hold.status === "released") {
      throw failedPrecondition("HOLD_RELEASED", "The hold was released; hold the slot again.", { slot });
    }
    if (hold.expireMs <= this.#now()) {
      throw failedPrecondition("HOLD_EXPIRED", "The hold lapsed before it was confirmed; hold the slot again.", {
        slot,
      });
    }
    const price = hold.doctor.prices.find((p) => p.mode === hold.mode);
    const appointment = this.appointments.book({
      doctorId: hold.doctor.id,
      slot,
      startMs: hold.grid.startMs,
      endMs: hold.grid.endMs,
      mode: hold.mode,
      price: { amountMinor: BigInt(price?.amountMinor ?? 0), currencyCode: hold.doctor.currency },
      bookingReference,
      patientReference,
    });
    hold.status = "confirmed";
    hold.appointment = appointment.name;
    this.#claims.set(slot, { kind: "booked", appointment: appointment.name });
    return appointment;
  }

  /** Releases a hold; releasing a lapsed or released one succeeds, a confirmed one is FAILED_PRECONDITION. */
  release(slot: string, holdId: string): void {
    const hold = this.#holdOf(slot, holdId);
    if (hold.status === "confirmed") {
      throw failedPrecondition(
        "HOLD_ALREADY_CONFIRMED",
        "The hold became an appointment; cancel the appointment instead.",
        { slot },
      );
    }
    hold.status = "released";
    const claim = this.#claims.get(slot);
    if (claim?.kind === "hold" && claim.hold === hold) this.#claims.delete(slot);
  }

  /** Test driver: the doctor is away in [from, to); slots there are BLOCKED (held or booked ones stay). */
  setAway(doctorId: string, from: Date, to: Date): void {
    this.doctor(doctorId);
    this.#away.push({ doctorId, startMs: from.getTime(), endMs: to.getTime() });
  }

  /** Test driver: a doctor stops (or resumes) taking bookings; listed either way. */
  setAcceptingBookings(doctorId: string, accepting: boolean): void {
    this.doctor(doctorId).acceptingBookings = accepting;
  }

  #resolve(name: string): { profile: DoctorProfile; grid: GridSlot } {
    const match = slotNamePattern.exec(name);
    const profile = match ? this.#doctors.get(match[1] as string) : undefined;
    const grid = match && profile ? this.#calendar.slot(profile, match[2] as string) : undefined;
    if (!profile || !grid) throw notFound("Slot", name);
    return { profile, grid };
  }

  #holdOf(slot: string, holdId: string): HoldRecord {
    const hold = this.#holds.get(holdId);
    if (!hold || hold.slot !== slot) throw notFound("Hold", `${slot} hold ${holdId}`);
    return hold;
  }

  #stateOf(profile: DoctorProfile, grid: GridSlot): { state: Slot_State; reason: string; hold?: HoldRecord } {
    const name = `doctors/${profile.id}/slots/${grid.id}`;
    const claim = this.#claims.get(name);
    if (claim?.kind === "booked") return { state: Slot_State.BOOKED, reason: "SLOT_BOOKED" };
    if (claim?.kind === "hold") {
      if (claim.hold.expireMs > this.#now()) return { state: Slot_State.HELD, reason: "SLOT_HELD", hold: claim.hold };
      this.#claims.delete(name); // the hold lapsed: the slot is free again
    }
    if (!profile.acceptingBookings) return { state: Slot_State.BLOCKED, reason: "DOCTOR_NOT_ACCEPTING_BOOKINGS" };
    if (grid.startMs <= this.#now()) return { state: Slot_State.BLOCKED, reason: "SLOT_IN_PAST" };
    const away = this.#away.some((a) => a.doctorId === profile.id && a.startMs < grid.endMs && grid.startMs < a.endMs);
    if (away) return { state: Slot_State.BLOCKED, reason: "DOCTOR_AWAY" };
    return { state: Slot_State.FREE, reason: "" };
  }

  #toSlot(profile: DoctorProfile, grid: GridSlot): Slot {
    const { state, hold } = this.#stateOf(profile, grid);
    return create(SlotSchema, {
      name: `doctors/${profile.id}/slots/${grid.id}`,
      startTime: timestampFromMs(grid.startMs),
      endTime: timestampFromMs(grid.endMs),
      modes: modesOf(profile),
      state,
      holdExpireTime: hold ? timestampFromMs(hold.expireMs) : undefined,
    });
  }

  #now(): number {
    return this.#clock.now().getTime();
  }
}

function toSlotHold(hold: HoldRecord): SlotHold {
  return create(SlotHoldSchema, {
    holdId: hold.holdId,
    slot: hold.slot,
    expireTime: timestampFromMs(hold.expireMs),
    slotStartTime: timestampFromMs(hold.grid.startMs),
    slotEndTime: timestampFromMs(hold.grid.endMs),
  });
}
