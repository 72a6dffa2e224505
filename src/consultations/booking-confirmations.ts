import type { Clock } from "../shared/clock.ts";
import type { Consultation } from "./consultation.ts";
import { transition } from "./consultation-states.ts";
import type { ConsultationStore } from "./consultation-store.ts";
import { GroupCommit, type GroupCommitOptions, type GroupOutcome } from "../shared/group-commit.ts";

interface Confirmed {
  /** The booking as this process last wrote it (REQUESTED). */
  readonly booking: Consultation;
  /** The Doctor Service's appointment for its hold. */
  readonly appointment: string;
  readonly guardianPatientId: string | undefined;
}

/**
 * The second step of a booking: REQUESTED -> SCHEDULED once the Doctor Service confirmed
 * the hold, with the patient's notification, group-committed like the first step
 * (booking-writer.ts): the confirmations of one event-loop turn share a transaction,
 * one UPDATE and one call of the notifier, and each keeps the guarantees of
 * ConsultationStore.change: the row changes only at the version this booking wrote
 * (no lock needed first), the status cache holds an invalidation marker at the new
 * version before the commit (a group whose marker fails fails, and each booking is
 * retried alone), and the new row is cached after it. A booking whose row moved
 * meanwhile (a concurrent retry confirmed it, a cancel) takes the locking path instead.
 */
export class BookingConfirmations {
  readonly #store: ConsultationStore;
  readonly #clock: Clock;
  readonly #group: GroupCommit<Confirmed, Consultation | undefined>;

  constructor(store: ConsultationStore, clock: Clock, options: GroupCommitOptions = {}) {
    this.#store = store;
    this.#clock = clock;
    this.#group = new GroupCommit((items) => this.#commit(items), options);
  }

  /** Schedules a REQUESTED booking whose hold became `appointment`. */
  async schedule(
    booking: Consultation,
    appointment: string,
    guardianPatientId: string | undefined,
  ): Promise<Consultation> {
    const scheduled =
      booking.state === "requested" ? await this.#group.add({ booking, appointment, guardianPatientId }) : undefined;
    if (scheduled !== undefined) return scheduled;
    return this.#store.change(booking.patientId, booking.id, undefined, async (current) => {
      if (current.state === "scheduled" && current.appointment === appointment) return undefined;
      return {
        changes: { state: transition(current.state, "confirm"), appointment, holdId: null },
        news: "booked",
        guardianPatientId,
      };
    });
  }

  async #commit(items: readonly Confirmed[]): Promise<GroupOutcome<Consultation | undefined>[]> {
    const store = this.#store;
    let announce: (() => void) | undefined;
    const updated = await store.repository.fork().transactional(async (em) => {
      const rows = await store.repository.confirmMany(
        em,
        transition("requested", "confirm"),
        items.map(({ booking, appointment }) => ({ id: booking.id, version: booking.version, appointment })),
        this.#clock.now(),
      );
      const changed = items.filter(({ booking }) => rows.has(booking.id));
      // The markers must be in the cache before the commit; they need not wait for the notification.
      const marked = Promise.all([...rows.values()].map((row) => store.invalidateWithin(row.id, row.version)));
      marked.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
      announce = await store.notifyManyWithin(
        em,
        changed.map(({ booking, guardianPatientId }) => ({
          consultation: rows.get(booking.id) as Consultation,
          news: "booked" as const,
          guardianPatientId,
        })),
      );
      await marked;
      return rows;
    });
    await Promise.all([...updated.values()].map((row) => store.afterCommit(row, undefined)));
    store.announce(announce);
    return items.map(({ booking }) => ({ value: updated.get(booking.id) }));
  }
}
