import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { type Doctor as DirectoryDoctor, Slot_State } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import {
  type ConsultationMode,
  type Doctor,
  type DoctorRating,
  DoctorRatingSchema,
  DoctorSchema,
  type Slot,
  SlotSchema,
} from "../../gen/telemed/patient/v1/consultation_pb.js";
import type { ListDoctorsRequest, ListFreeSlotsRequest } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import type { Clock } from "../shared/clock.ts";
import { notFound } from "../shared/domain-errors.ts";
import type { DoctorGateway } from "./doctor-gateway.ts";
import type { FeedbackStore, RatingSummary } from "./feedback.ts";

const day = 86_400_000;
const specialitiesCacheMs = 10 * 60_000;

/**
 * The doctor directory as patients see it: the Doctor Service's doctors and free slots,
 * with our aggregated ratings. Page tokens are the Doctor Service's (opaque to us and
 * to the client); the filters are passed through unchanged, so they stay bound to them.
 */
export class DoctorDirectory {
  readonly #doctor: DoctorGateway;
  readonly #feedback: FeedbackStore;
  readonly #clock: Clock;
  #specialities: { names: Map<string, string>; until: number } | undefined;

  constructor(doctor: DoctorGateway, feedback: FeedbackStore, clock: Clock) {
    this.#doctor = doctor;
    this.#feedback = feedback;
    this.#clock = clock;
  }

  async list(request: ListDoctorsRequest): Promise<{ doctors: Doctor[]; nextPageToken: string }> {
    const answer = await this.#call(() =>
      this.#doctor.client.listDoctors({
        speciality: request.speciality,
        language: request.language,
        mode: request.mode as number,
        availableStartTime: request.availableStartTime,
        availableEndTime: request.availableEndTime,
        pageSize: request.pageSize,
        pageToken: request.pageToken,
      }),
    );
    const ratings = await this.#feedback.ratingsOf(answer.doctors.map((d) => idOf(d.name)));
    const names = await this.#specialityNames();
    const window = request.availableStartTime
      ? {
          from: timestampMs(request.availableStartTime),
          to: request.availableEndTime ? timestampMs(request.availableEndTime) : undefined,
        }
      : undefined;
    const doctors = await Promise.all(
      answer.doctors.map(async (d) => {
        const next = window === undefined ? undefined : await this.#nextFreeSlot(d.name, window.from, window.to);
        return toDoctor(d, names, ratings.get(idOf(d.name)), next);
      }),
    );
    return { doctors, nextPageToken: answer.nextPageToken };
  }

  async get(name: string): Promise<Doctor> {
    const doctor = await this.#doctor.doctor(idOf(name));
    if (doctor === undefined) throw notFound("Doctor");
    const ratings = await this.#feedback.ratingsOf([idOf(name)]);
    return toDoctor(doctor, await this.#specialityNames(), ratings.get(idOf(name)), undefined);
  }

  /** Free slots only, never in the past, in start order. */
  async freeSlots(request: ListFreeSlotsRequest): Promise<{ slots: Slot[]; nextPageToken: string }> {
    const now = this.#clock.now().getTime();
    const from = Math.max(now, request.startTime ? timestampMs(request.startTime) : now);
    const to = request.endTime ? timestampMs(request.endTime) : from + 14 * day;
    if (to <= from) return { slots: [], nextPageToken: "" };
    if ((await this.#doctor.doctor(idOf(request.parent))) === undefined) throw notFound("Doctor");
    const answer = await this.#call(() =>
      this.#doctor.client.listSlots({
        parent: request.parent,
        startTime: timestampFromMs(from),
        endTime: timestampFromMs(Math.min(to, from + 31 * day)),
        states: [Slot_State.FREE],
        pageSize: request.pageSize || 50,
        pageToken: request.pageToken,
      }),
    );
    const slots = answer.slots
      .filter((slot) => request.mode === 0 || slot.modes.includes(request.mode as number))
      .map((slot) =>
        create(SlotSchema, {
          name: slot.name,
          startTime: slot.startTime,
          endTime: slot.endTime,
          modes: slot.modes as number[] as ConsultationMode[],
        }),
      );
    return { slots, nextPageToken: answer.nextPageToken };
  }

  /** GetDoctorRating: NOT_FOUND for a doctor the directory does not know. */
  async rating(name: string): Promise<DoctorRating> {
    const doctorName = name.slice(0, -"/rating".length);
    if ((await this.#doctor.doctor(idOf(doctorName))) === undefined) throw notFound("Doctor");
    return toRating(doctorName, await this.#feedback.ratingOf(idOf(doctorName)));
  }

  async #nextFreeSlot(doctor: string, from: number, to: number | undefined): Promise<number | undefined> {
    const start = Math.max(from, this.#clock.now().getTime());
    const end = Math.min(to ?? start + 31 * day, start + 31 * day);
    if (end <= start) return undefined;
    const { slots } = await this.#call(() =>
      this.#doctor.client.listSlots({
        parent: doctor,
        startTime: timestampFromMs(start),
        endTime: timestampFromMs(end),
        states: [Slot_State.FREE],
        pageSize: 1,
      }),
    );
    const first = slots[0]?.startTime;
    return first ? timestampMs(first) : undefined;
  }

  async #specialityNames(): Promise<Map<string, string>> {
    const now = this.#clock.now().getTime();
    if (this.#specialities !== undefined && this.#specialities.until > now) return this.#specialities.names;
    const { specialities } = await this.#call(() => this.#doctor.client.listSpecialities({ pageSize: 500 }));
    const names = new Map(specialities.map((s) => [idOf(s.name), s.displayName]));
    this.#specialities = { names, until: now + specialitiesCacheMs };
    return names;
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    return this.#doctor.call(call);
  }
}

function toDoctor(
  d: DirectoryDoctor,
  names: Map<string, string>,
  rating: RatingSummary | undefined,
  nextFreeMs: number | undefined,
): Doctor {
  return create(DoctorSchema, {
    name: d.name,
    displayName: d.displayName,
    specialities: d.specialities.map((code) => ({ code, displayName: names.get(code) ?? code })),
    languages: [...d.languages],
    qualifications: d.qualifications,
    yearsOfExperience: d.yearsOfExperience,
    modes: d.prices.map((p) => p.mode as number as ConsultationMode),
    prices: d.prices.map((p) => ({
      mode: p.mode as number as ConsultationMode,
      price: { amountMinor: p.price?.amountMinor ?? 0n, currencyCode: p.price?.currencyCode ?? "" },
    })),
    rating: toRating(d.name, rating),
    nextFreeSlotTime: nextFreeMs === undefined ? undefined : timestampFromMs(nextFreeMs),
    photoUri: d.photoUri,
  });
}

function toRating(doctorName: string, rating: RatingSummary | undefined): DoctorRating {
  return create(DoctorRatingSchema, {
    name: `${doctorName}/rating`,
    averageRating: rating?.average ?? 0,
    ratingCount: BigInt(rating?.count ?? 0),
    starCounts: (rating?.stars ?? [0, 0, 0, 0, 0]).map((n) => BigInt(n)),
  });
}

function idOf(name: string): string {
  return name.slice(name.indexOf("/") + 1);
}
