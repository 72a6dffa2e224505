import { createHash } from "node:crypto";
import type { CallAudit } from "../audit/call-audit.ts";
import { DomainError, invalidArgument } from "../shared/domain-errors.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import type { Mode } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import { type Consultation, consultationNameOf, slotNameOf } from "./consultation.ts";
import type { Caller } from "./consultation-caller.ts";
import type { ConsultationModeName } from "./consultation-entity.ts";
import { modeToApi } from "./consultation-mapping.ts";
import { type ConsultationDeps, holdRequestId, sealText } from "./consultation-deps.ts";
import { requireFutureSlot } from "./consultation-rules.ts";
import { transition } from "./consultation-states.ts";
import { BookingConfirmations } from "./booking-confirmations.ts";
import { BookingWriter } from "./booking-writer.ts";
import { slotRefusal, unknownDoctor } from "./doctor-gateway.ts";

/** A booking as the patient asked for it. */
export interface BookingRequest {
  readonly patientId: string;
  readonly doctorId: string;
  readonly slotId: string;
  readonly mode: ConsultationModeName;
  readonly reason: string;
  readonly requestId: string;
}

/**
 * CreateConsultation (TST-PT003-1, -2): hold the slot at the Doctor Service, commit our
 * booking (REQUESTED) with its audit entry, then confirm the hold and move to SCHEDULED
 * with the patient's notification. Our commit failing releases the hold; the Doctor
 * Service refusing the confirmation cancels our row and releases it. A slot is booked
 * at most once: the hold is the first guard, the partial unique index on (doctor, slot)
 * the last one. A retry with the same request id returns the same consultation (AIP-155).
 */
export class Booking {
  readonly #deps: ConsultationDeps;
  readonly #writer: BookingWriter;
  readonly #confirmations: BookingConfirmations;

  constructor(deps: ConsultationDeps) {
    this.#deps = deps;
    this.#writer = new BookingWriter(deps.store.repository, deps.audit);
    this.#confirmations = new BookingConfirmations(deps.store, deps.clock);
  }

  async book(request: BookingRequest, caller: Caller, audit: CallAudit | undefined): Promise<Consultation> {
    const { store, doctor, clock, config } = this.#deps;
    const fingerprint = fingerprintOf(request);
    const existing = await store.repository.findByRequest(request.patientId, request.requestId);
    if (existing !== undefined) return this.#replay(existing, fingerprint, caller);

    const directory = await doctor.doctor(request.doctorId);
    if (directory === undefined) throw unknownDoctor("consultation.doctor");
    if (!directory.acceptingBookings) throw slotRefusal("DOCTOR_NOT_ACCEPTING_BOOKINGS");
    const mode = modeToApi(request.mode) as unknown as Mode;
    const price = directory.prices.find((p) => p.mode === mode)?.price;
    if (price === undefined) {
      throw new DomainError(
        "invalid-argument",
        "MODE_NOT_OFFERED",
        "The doctor does not offer this kind of consultation.",
        {
          violations: [{ field: "consultation.mode", description: "not offered by this doctor" }],
        },
      );
    }
    const slot = slotNameOf(request);
    const held = await doctor.hold(
      slot,
      config.holdTtlSeconds,
      mode,
      holdRequestId(request.patientId, request.requestId),
      "consultation.slot",
    );
    const id = uuidV7();
    let inserted: Consultation | undefined;
    try {
      requireFutureSlot(clock.now().getTime(), held.startTime.getTime());
      const now = clock.now();
      // Committed with its audit entry, in a transaction shared with concurrent bookings.
      inserted = await this.#writer.insert(
        {
          id,
          patientId: request.patientId,
          doctorId: request.doctorId,
          slotId: request.slotId,
          mode: request.mode,
          reasonSealed: sealText(this.#deps.secretBox, request.reason, id),
          startTime: held.startTime,
          endTime: held.endTime,
          doctorDisplayName: directory.displayName,
          price: { amountMinor: Number(price.amountMinor), currencyCode: price.currencyCode },
          bookedBy: caller.actor.principal,
          bookedByRole: caller.actor.role,
          holdId: held.holdId,
          createRequestId: request.requestId,
          createFingerprint: fingerprint,
          now,
        },
        audit,
      );
    } catch (error) {
      await doctor.release(slot, held.holdId);
      throw error;
    }
    if (inserted === undefined) {
      // A concurrent retry of this very booking stored it first; the hold is theirs too: keep it.
      const winner = await store.repository.findByRequest(request.patientId, request.requestId);
      if (winner === undefined) throw new Error("a booking conflicted on its request id but cannot be read");
      return this.#replay(winner, fingerprint, caller);
    }
    return this.confirm(inserted, caller.guardianPatientId);
  }

  /**
   * Confirms a REQUESTED booking's hold and moves it to SCHEDULED (also used to resume
   * a booking whose confirmation was interrupted). A refusal cancels it.
   */
  async confirm(booking: Consultation, guardianPatientId: string | undefined): Promise<Consultation> {
    const { doctor } = this.#deps;
    if (booking.state !== "requested" || booking.holdId === undefined) return booking;
    const slot = slotNameOf(booking);
    let appointment: string;
    try {
      appointment = (
        await doctor.confirm(slot, booking.holdId, consultationNameOf(booking), `patients/${booking.patientId}`)
      ).name;
    } catch (error) {
      if (error instanceof DomainError && error.kind === "failed-precondition") await this.#fail(booking);
      throw error;
    }
    return this.#confirmations.schedule(booking, appointment, guardianPatientId);
  }

  /** The hold could not be confirmed: the booking ends, and a retry of it gets the same refusal. */
  async #fail(booking: Consultation): Promise<void> {
    const { store, doctor, clock } = this.#deps;
    await store.change(booking.patientId, booking.id, undefined, async (current) => {
      if (current.state !== "requested") return undefined;
      return {
        changes: {
          state: transition(current.state, "cancel"),
          cancellation: {
            principal: "",
            role: "system",
            reasonSealed: sealText(this.#deps.secretBox, "The slot could not be confirmed.", booking.id) ?? null,
            code: "booking_failed",
            time: clock.now(),
          },
        },
      };
    });
    if (booking.holdId !== undefined) await doctor.release(slotNameOf(booking), booking.holdId);
  }

  async #replay(existing: Consultation, fingerprint: string, caller: Caller): Promise<Consultation> {
    if (existing.createFingerprint !== fingerprint) {
      throw new DomainError(
        "invalid-argument",
        "REQUEST_ID_REUSED",
        "This request id was already used for a different booking. Use a new request id for a new booking.",
        { violations: [{ field: "request_id", description: "already used for a different booking" }] },
      );
    }
    if (existing.cancellation?.code === "booking_failed") throw slotRefusal("SLOT_UNAVAILABLE");
    return this.confirm(existing, caller.guardianPatientId);
  }
}

/** What makes two bookings the same booking: doctor, slot, mode and reason. */
function fingerprintOf(request: BookingRequest): string {
  return createHash("sha256")
    .update(JSON.stringify([request.doctorId, request.slotId, request.mode, request.reason]))
    .digest("hex");
}

/** INVALID_ARGUMENT unless the slot is the doctor's (the contract's CEL rule says so too). */
export function requireSlotOfDoctor(doctorName: string, slotName: string): void {
  if (!slotName.startsWith(`${doctorName}/slots/`)) {
    throw invalidArgument("consultation.slot", "must be a slot of the consultation's doctor");
  }
}
