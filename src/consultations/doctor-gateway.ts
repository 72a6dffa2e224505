import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Appointment, Doctor, JoinInfo, Mode, ParticipantRole } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import type { DoctorService } from "../../gen/telemed/doctor/v1/doctor_service_pb.js";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";

/** A slot held for a booking in progress. */
export interface HeldSlot {
  readonly holdId: string;
  readonly startTime: Date;
  readonly endTime: Date;
}

/** Tuning of the gateway. */
export interface DoctorGatewayOptions {
  /** How long a directory entry (GetDoctor) is reused; 10 s by default, 0 to ask every time. */
  readonly doctorCacheMs?: number;
  /** The time for that cache. */
  readonly now?: () => number;
}

/** A refusal of the Doctor Service: its status code and ErrorInfo reason. */
interface Refusal {
  readonly code: Code;
  readonly reason: string;
}

/**
 * The Doctor Service as the consultations context uses it: its gRPC client, with its
 * refusals turned into domain errors a patient understands (TST-PT003-2) and its
 * outages into UNAVAILABLE. Messages never repeat what the Doctor Service said: they
 * are ours, written for patients.
 */
export class DoctorGateway {
  readonly #client: Client<typeof DoctorService>;
  readonly #doctors: DoctorCache;

  constructor(client: Client<typeof DoctorService>, options: DoctorGatewayOptions = {}) {
    this.#client = client;
    this.#doctors = new DoctorCache(options.doctorCacheMs ?? 10_000, options.now ?? Date.now);
  }

  get client(): Client<typeof DoctorService> {
    return this.#client;
  }

  /** A directory read: a refused page token is the caller's INVALID_ARGUMENT, an unknown doctor NOT_FOUND. */
  async call<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      const { code } = refusalOf(error);
      if (code === Code.InvalidArgument) {
        throw invalidArgument("page_token", "not a page token of this list; start again without one");
      }
      if (code === Code.NotFound) throw notFound("Doctor");
      throw unavailableOr(error);
    }
  }

  /**
   * The doctor, or undefined when the directory has none by that id. Answers are kept
   * for a few seconds (DoctorCache): a booking needs the name, prices and whether the
   * doctor takes bookings, and the Doctor Service re-checks availability on the hold.
   */
  doctor(doctorId: string): Promise<Doctor | undefined> {
    return this.#doctors.get(doctorId, async () => {
      try {
        return (await this.#client.getDoctor({ name: `doctors/${doctorId}` })).doctor;
      } catch (error) {
        if (refusalOf(error).code === Code.NotFound) return undefined;
        throw unavailableOr(error);
      }
    });
  }

  /** Holds a free slot; a slot that is taken, or a doctor who is away, is FAILED_PRECONDITION. */
  async hold(slot: string, ttlSeconds: number, mode: Mode, requestId: string, field: string): Promise<HeldSlot> {
    try {
      const { hold } = await this.#client.holdSlot({ slot, ttl: { seconds: BigInt(ttlSeconds) }, mode, requestId });
      if (!hold?.slotStartTime || !hold.slotEndTime) throw new Error("HoldSlot answered without the slot's times");
      return {
        holdId: hold.holdId,
        startTime: timestampDate(hold.slotStartTime),
        endTime: timestampDate(hold.slotEndTime),
      };
    } catch (error) {
      const { code, reason } = refusalOf(error);
      if (code === Code.NotFound) {
        throw new DomainError(
          "invalid-argument",
          "SLOT_NOT_FOUND",
          "This slot does not exist. Please choose a slot from the doctor's free slots.",
          {
            violations: [{ field, description: "names no slot of this doctor" }],
          },
        );
      }
      if (code === Code.InvalidArgument && reason === "MODE_NOT_OFFERED") {
        throw new DomainError(
          "invalid-argument",
          "MODE_NOT_OFFERED",
          "The doctor does not offer this kind of consultation.",
          {
            violations: [{ field: "consultation.mode", description: "not offered by this doctor" }],
          },
        );
      }
      if (code === Code.FailedPrecondition) throw slotRefusal(reason);
      throw unavailableOr(error);
    }
  }

  /** Turns the hold into an appointment; a lapsed hold is FAILED_PRECONDITION (SLOT_UNAVAILABLE). */
  async confirm(
    slot: string,
    holdId: string,
    bookingReference: string,
    patientReference: string,
  ): Promise<Appointment> {
    try {
      const { appointment } = await this.#client.confirmSlot({ slot, holdId, bookingReference, patientReference });
      if (appointment === undefined) throw new Error("ConfirmSlot answered without an appointment");
      return appointment;
    } catch (error) {
      const { code } = refusalOf(error);
      if (code === Code.FailedPrecondition || code === Code.NotFound || code === Code.AlreadyExists) {
        throw slotRefusal("HOLD_LAPSED");
      }
      throw unavailableOr(error);
    }
  }

  /** Releases a hold; best effort (an unreleased hold lapses by itself). */
  async release(slot: string, holdId: string): Promise<void> {
    await this.#client.releaseSlot({ slot, holdId }).catch(() => undefined);
  }

  /** Cancels the appointment (repeating a cancel is harmless). */
  async cancel(appointment: string, reason: string): Promise<void> {
    await this.#transition(() => this.#client.cancelAppointment({ name: appointment, reason }));
  }

  async start(appointment: string): Promise<void> {
    await this.#transition(() => this.#client.startAppointment({ name: appointment }));
  }

  async complete(appointment: string): Promise<void> {
    await this.#transition(() => this.#client.completeAppointment({ name: appointment }));
  }

  /** The meeting details for one participant. */
  async joinInfo(appointment: string, participant: ParticipantRole): Promise<JoinInfo> {
    try {
      const { joinInfo } = await this.#client.getJoinInfo({ appointment, participant });
      if (joinInfo === undefined) throw new Error("GetJoinInfo answered without join info");
      return joinInfo;
    } catch (error) {
      const { code, reason } = refusalOf(error);
      if (code === Code.FailedPrecondition) {
        throw new DomainError(
          "failed-precondition",
          reason === "JOIN_NOT_OPEN_YET" ? "JOIN_NOT_OPEN_YET" : "JOIN_NOT_AVAILABLE",
          "The meeting is not open for joining now.",
        );
      }
      throw unavailableOr(error);
    }
  }

  async #transition(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (refusalOf(error).code === Code.FailedPrecondition) {
        throw new DomainError(
          "failed-precondition",
          "DOCTOR_SERVICE_REFUSED",
          "The doctor's calendar does not allow this change now.",
        );
      }
      throw unavailableOr(error);
    }
  }
}

/** The patient-facing refusal of a slot, by the Doctor Service's reason. */
export function slotRefusal(reason: string): DomainError {
  switch (reason) {
    case "SLOT_IN_PAST":
      return new DomainError(
        "failed-precondition",
        "SLOT_IN_PAST",
        "This time has already passed. Please choose a later slot.",
      );
    case "DOCTOR_NOT_ACCEPTING_BOOKINGS":
    case "DOCTOR_AWAY":
      return new DomainError(
        "failed-precondition",
        "DOCTOR_NOT_AVAILABLE",
        "The doctor is not available at this time. Please choose another time or another doctor.",
      );
    default:
      return new DomainError(
        "failed-precondition",
        "SLOT_UNAVAILABLE",
        "This time is no longer available. Please choose another slot.",
      );
  }
}

/** The doctor named in a booking does not exist. */
export function unknownDoctor(field: string): DomainError {
  const error = invalidArgument(field, "names no doctor in the directory");
  return new DomainError("invalid-argument", "DOCTOR_NOT_FOUND", "This doctor is not in the directory.", {
    violations: error.violations,
  });
}

function refusalOf(error: unknown): Refusal {
  if (!(error instanceof ConnectError)) return { code: Code.Unknown, reason: "" };
  const info = error.findDetails(ErrorInfoSchema)[0];
  return { code: error.code, reason: info?.reason ?? "" };
}

/** Anything the Doctor Service did not refuse on purpose: it is down, slow or broken. */
function unavailableOr(error: unknown): unknown {
  if (error instanceof DomainError) return error;
  return new DomainError(
    "unavailable",
    "DOCTOR_SERVICE_UNAVAILABLE",
    "The doctors' calendar cannot be reached right now. Please try again shortly.",
    { retryAfterSeconds: 5 },
  );
}

const maxCachedDoctors = 10_000;

/**
 * Directory entries by doctor id for `ttlMs`. Concurrent misses of one doctor share one
 * GetDoctor call; only found doctors are kept (an unknown id is asked again, and a
 * failed call is never cached). A stale entry is at worst `ttlMs` old: a doctor who
 * just stopped taking bookings is still refused by HoldSlot, which the Doctor Service
 * decides from its current state.
 */
class DoctorCache {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, { doctor: Doctor; expiresMs: number }>();
  readonly #loading = new Map<string, Promise<Doctor | undefined>>();

  constructor(ttlMs: number, now: () => number) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get(id: string, load: () => Promise<Doctor | undefined>): Promise<Doctor | undefined> {
    if (this.#ttlMs <= 0) return load();
    const entry = this.#entries.get(id);
    if (entry !== undefined && entry.expiresMs > this.#now()) return Promise.resolve(entry.doctor);
    let loading = this.#loading.get(id);
    if (loading === undefined) {
      const started = this.#now();
      loading = load()
        .then((doctor) => {
          if (doctor !== undefined) {
            if (this.#entries.size >= maxCachedDoctors) this.#entries.clear();
            this.#entries.set(id, { doctor, expiresMs: started + this.#ttlMs });
          } else {
            this.#entries.delete(id);
          }
          return doctor;
        })
        .finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    return loading;
  }
}
