import type { ReminderPreferences } from "../notifications/notifier.ts";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import type { Booking } from "./booking.ts";
import type { Consultation } from "./consultation.ts";
import { reminderDraft } from "./consultation-notifications.ts";
import { dueReminderOffset } from "./consultation-rules.ts";
import type { ConsultationStore } from "./consultation-store.ts";

/** What the scanner needs. */
export interface ReminderScannerDeps {
  readonly store: ConsultationStore;
  readonly booking: Booking;
  readonly preferences: ReminderPreferences;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalMs: number;
  readonly horizonSeconds: number;
  /** Unconfirmed bookings older than this are resumed (confirmed, or cancelled when the hold lapsed). */
  readonly staleBookingMs: number;
}

const batchSize = 500;

/**
 * Sends reminders of upcoming consultations at each patient's offsets (TST-PT006-1),
 * exactly once per offset and start time however many replicas scan: each reminder is
 * recorded in `consultation_reminders` (primary key consultation, offset, start) in the
 * transaction that stores its notification, with the consultation row locked
 * `for update skip locked` and re-checked SCHEDULED. A cancel holds that lock while it
 * commits, so a reminder is either recorded before the cancel or not at all.
 *
 * It also resumes bookings whose confirmation was interrupted (the process died between
 * our commit and ConfirmSlot). Time comes from the clock; `scanOnce` is what the timer
 * runs, and what tests call after moving the clock.
 */
export class ReminderScanner {
  readonly #deps: ReminderScannerDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(deps: ReminderScannerDeps) {
    this.#deps = deps;
  }

  /** Starts scanning every `intervalMs` (not at all when it is 0). */
  start(): void {
    if (this.#deps.intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.scanOnce(), this.#deps.intervalMs);
    this.#timer.unref();
  }

  /** One scan; a scan already running is waited for instead of overlapped. */
  scanOnce(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#running ??= this.#scan()
      .catch((error: unknown) =>
        this.#deps.logger.warn(
          { err: { type: error instanceof Error ? error.constructor.name : typeof error } },
          "reminder scan failed",
        ),
      )
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running;
  }

  async #scan(): Promise<void> {
    const { store, clock, horizonSeconds } = this.#deps;
    await this.#resumeBookings();
    const now = clock.now();
    const upcoming = await store.repository.upcoming(now, horizonSeconds * 1000, batchSize);
    if (upcoming.length === 0) return;
    const offsets = await this.#deps.preferences.reminderOffsetsFor([...new Set(upcoming.map((c) => c.patientId))]);
    const sent = await this.#sentFor(upcoming);
    for (const consultation of upcoming) {
      const patientOffsets = (offsets.get(consultation.patientId) ?? []).filter((o) => o <= horizonSeconds);
      const offset = dueReminderOffset(
        { startMs: consultation.startTime.getTime(), bookedMs: consultation.bookedAt.getTime() },
        patientOffsets,
        sent.get(key(consultation)) ?? new Set(),
        now.getTime(),
      );
      if (offset !== undefined) await this.#remind(consultation, offset, patientOffsets);
    }
  }

  /** Records the reminder (and marks the farther offsets it supersedes) with its notification, once. */
  async #remind(consultation: Consultation, offset: number, allOffsets: readonly number[]): Promise<void> {
    const { store, clock } = this.#deps;
    let announce: (() => void) | undefined;
    await store.repository.fork().transactional(async (em) => {
      const locked = await store.repository.lockScheduledOrSkip(em, consultation.id);
      // Cancelled, moved or being changed: the next scan looks again with fresh data.
      if (locked === undefined || locked.startTime.getTime() !== consultation.startTime.getTime()) return;
      const now = clock.now().toISOString();
      const superseded = allOffsets.filter((o) => o >= offset);
      const inserted = await em.execute<{ offset_seconds: number }[]>(
        `insert into "consultation_reminders" ("consultation_id", "offset_seconds", "start_time", "sent_at") ` +
          `select ?, o, ?, ? from unnest(?::int[]) as o on conflict do nothing returning "offset_seconds"`,
        [locked.id, locked.startTime.toISOString(), now, `{${superseded.join(",")}}`],
        "all",
      );
      if (!inserted.some((row) => row.offset_seconds === offset)) return;
      announce = await store.notifyReminderWithin(em, reminderDraft(locked, offset));
    });
    announce?.();
  }

  async #sentFor(consultations: readonly Consultation[]): Promise<Map<string, Set<number>>> {
    const rows = await this.#deps.store.repository
      .fork()
      .execute<{ consultation_id: string; start_time: string | Date; offset_seconds: number }[]>(
        `select "consultation_id", "start_time", "offset_seconds" from "consultation_reminders" where "consultation_id" in (?)`,
        [consultations.map((c) => c.id)],
        "all",
      );
    const sent = new Map<string, Set<number>>();
    for (const row of rows) {
      const k = `${row.consultation_id}@${new Date(row.start_time).getTime()}`;
      const set = sent.get(k) ?? new Set<number>();
      set.add(row.offset_seconds);
      sent.set(k, set);
    }
    return sent;
  }

  async #resumeBookings(): Promise<void> {
    const { store, booking, clock, staleBookingMs } = this.#deps;
    const stale = await store.repository.unconfirmed(new Date(clock.now().getTime() - staleBookingMs), batchSize);
    for (const consultation of stale) {
      await booking.confirm(consultation, undefined).catch(() => undefined); // a refusal cancelled it
    }
  }
}

function key(consultation: Consultation): string {
  return `${consultation.id}@${consultation.startTime.getTime()}`;
}
