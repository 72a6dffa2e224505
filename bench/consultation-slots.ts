import { Mode } from "../gen/telemed/doctor/v1/doctor_pb.js";
import { DoctorCalendar } from "../src/simulators/doctor-calendar.ts";
import { type DoctorProfile, seedDoctors } from "../src/simulators/doctor-directory.ts";

/** A time range of the seeded doctors' slot grid that one use of the bench books from, and nothing else does. */
export interface SlotRange {
  readonly fromMs: number;
  readonly toMs: number;
}

const year = (y: number) => Date.UTC(y, 0, 1);

/**
 * Disjoint ranges, far in the future, one per use: the bench database lives for the
 * whole run and a live booking holds its (doctor, slot) for good (the partial unique
 * index), so no two targets may draw from the same time. A range of ten years holds
 * about 200 000 slots of the seeded doctors.
 */
export const slotRanges = {
  /** The checks before a load (one raw-bytes booking and one grpc-js booking). */
  verify: { fromMs: year(2029), toMs: year(2030) },
  bookConsultation: { fromMs: year(2030), toMs: year(2040) },
  pgInsertConsultation: { fromMs: year(2040), toMs: year(2050) },
  /** The status changes of the notification-delay targets (each books and cancels). */
  notificationChanges: { fromMs: year(2050), toMs: year(2055) },
  notificationChangesLoaded: { fromMs: year(2055), toMs: year(2060) },
  /** The booking load that runs beside notification-delay-loaded. */
  notificationLoad: { fromMs: year(2060), toMs: year(2070) },
} as const satisfies Record<string, SlotRange>;

/** One bookable slot of the seeded directory. */
export interface BenchSlot {
  readonly doctorId: string;
  /** The id in `doctors/{doctor}/slots/{id}`. */
  readonly slotId: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly doctorDisplayName: string;
  /** The doctor's VIDEO price (every seeded doctor offers video). */
  readonly price: { readonly amountMinor: number; readonly currency: string };
}

const weekMs = 7 * 86_400_000;

/**
 * Slot `n` of a range, for every `n`, without a list: the seeded doctors' grid (the
 * Doctor Service simulator's own calendar code and directory, so every slot exists
 * there and is free unless booked), week by week from the range's start, in start
 * order across the doctors who accept bookings. Distinct `n` give distinct slots by
 * construction; asking past the range's end throws, so a load that outruns it fails
 * loudly instead of booking a slot twice.
 */
export class SlotSequence {
  readonly range: SlotRange;
  readonly #calendar = new DoctorCalendar();
  readonly #doctors: DoctorProfile[];
  readonly #slots: BenchSlot[] = [];
  #weekFrom: number;

  constructor(range: SlotRange) {
    this.range = range;
    this.#weekFrom = range.fromMs;
    this.#doctors = seedDoctors()
      .filter((doctor) => doctor.acceptingBookings)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The doctors the sequence books, by id. */
  doctorIds(): string[] {
    return this.#doctors.map((doctor) => doctor.id);
  }

  /** Slot number `n` (from 0); throws when the range has fewer. */
  slot(n: number): BenchSlot {
    if (!Number.isInteger(n) || n < 0) throw new Error(`slot number ${n} is not a whole number`);
    while (this.#slots.length <= n) {
      if (this.#weekFrom >= this.range.toMs) {
        throw new Error(
          `the bench's slot range ${new Date(this.range.fromMs).toISOString()}..${new Date(this.range.toMs).toISOString()} ` +
            `has only ${this.#slots.length} slots; request ${n} would reuse one`,
        );
      }
      this.#addWeek();
    }
    return this.#slots[n] as BenchSlot;
  }

  /** The slots of one doctor that start in [fromMs, toMs), by the same grid (to compare with ListFreeSlots). */
  slotsOf(doctorId: string, fromMs: number, toMs: number): string[] {
    const doctor = this.#doctors.find((d) => d.id === doctorId);
    if (doctor === undefined) throw new Error(`no bookable seeded doctor ${doctorId}`);
    return this.#calendar.slots(doctor, fromMs, toMs).map((grid) => `doctors/${doctorId}/slots/${grid.id}`);
  }

  #addWeek(): void {
    const from = this.#weekFrom;
    const to = Math.min(from + weekMs, this.range.toMs);
    const week: BenchSlot[] = [];
    for (const doctor of this.#doctors) {
      const video = doctor.prices.find((price) => price.mode === Mode.VIDEO);
      if (video === undefined) throw new Error(`seeded doctor ${doctor.id} offers no video consultations`);
      for (const grid of this.#calendar.slots(doctor, from, to)) {
        week.push({
          doctorId: doctor.id,
          slotId: grid.id,
          startMs: grid.startMs,
          endMs: grid.endMs,
          doctorDisplayName: doctor.displayName,
          price: { amountMinor: video.amountMinor, currency: doctor.currency },
        });
      }
    }
    week.sort((a, b) => a.startMs - b.startMs || a.doctorId.localeCompare(b.doctorId));
    this.#slots.push(...week);
    this.#weekFrom = to;
  }
}

/**
 * The booking's request id for request `n` of a run: a well-formed UUID (version 4
 * layout) whose first group is the run id and second a per-use tag, so ids never
 * repeat within or across runs and targets.
 */
export function benchRequestId(runId: string, tag: number, n: number): string {
  if (!/^[0-9a-f]{8}$/.test(runId)) throw new Error(`run id ${runId} is not 8 hex digits`);
  return `${runId}-${tag.toString(16).padStart(4, "0")}-4000-8000-${n.toString(16).padStart(12, "0")}`;
}
