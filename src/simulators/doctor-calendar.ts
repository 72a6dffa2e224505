import type { DoctorProfile } from "./doctor-directory.ts";
import { ZonedTime } from "./zoned-time.ts";

/** One period of a doctor's slot grid. Its id encodes the start, so it is stable across restarts. */
export interface GridSlot {
  /** The id in `doctors/{doctor}/slots/{id}`, for example `20260302T0330Z` (UTC). */
  readonly id: string;
  readonly startMs: number;
  readonly endMs: number;
}

const slotIdPattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z$/;

/**
 * Derives a doctor's bookable slots from the working hours in the doctor's time zone:
 * the grid is computed, never stored, so any window can be listed and any slot name
 * checked without pre-generating a calendar. State (held, booked) lives elsewhere.
 */
export class DoctorCalendar {
  readonly #zones = new ZonedTime();

  /** The slots that start in [fromMs, toMs), in start order. */
  slots(profile: DoctorProfile, fromMs: number, toMs: number): GridSlot[] {
    if (toMs <= fromMs) return [];
    const step = profile.slotMinutes;
    const byStart = new Map<number, GridSlot>();
    for (const date of this.#zones.localDays(fromMs, toMs, profile.timeZone)) {
      for (const hours of profile.workingHours) {
        if (!hours.weekdays.includes(date.weekday)) continue;
        const end = minutesOf(hours.to);
        for (let minute = minutesOf(hours.from); minute + step <= end; minute += step) {
          const startMs = this.#zones.toInstant(date.year, date.month, date.day, minute, profile.timeZone);
          // A DST overlap can produce one start twice; the map keeps it once.
          if (startMs >= fromMs && startMs < toMs) {
            byStart.set(startMs, { id: slotIdOf(startMs), startMs, endMs: startMs + step * 60_000 });
          }
        }
      }
    }
    return [...byStart.values()].sort((a, b) => a.startMs - b.startMs);
  }

  /**
   * The grid slot with this id, or undefined when the id names no slot of this doctor.
   * Every hold resolves a slot, so the usual case is checked directly (the start's
   * local time is on the grid of some working hours and maps back to the same instant:
   * three time-zone conversions); anything else, such as a start that only a DST gap
   * puts on the grid, takes the full day's grid, which gives the same answer.
   */
  slot(profile: DoctorProfile, id: string): GridSlot | undefined {
    const startMs = parseSlotId(id);
    if (startMs === undefined) return undefined;
    const step = profile.slotMinutes;
    const local = this.#zones.local(startMs, profile.timeZone);
    const onGrid = profile.workingHours.some((hours) => {
      const from = minutesOf(hours.from);
      return (
        hours.weekdays.includes(local.weekday) &&
        local.minutes >= from &&
        local.minutes + step <= minutesOf(hours.to) &&
        (local.minutes - from) % step === 0
      );
    });
    if (
      onGrid &&
      this.#zones.toInstant(local.year, local.month, local.day, local.minutes, profile.timeZone) === startMs
    ) {
      return { id: slotIdOf(startMs), startMs, endMs: startMs + step * 60_000 };
    }
    return this.slots(profile, startMs, startMs + 1)[0];
  }
}

/** The slot id for a start instant: UTC, minute precision. */
export function slotIdOf(startMs: number): string {
  const iso = new Date(startMs).toISOString(); // 2026-03-02T03:30:00.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}

/** The start instant a slot id encodes, or undefined for an id that is not one. */
export function parseSlotId(id: string): number | undefined {
  const match = slotIdPattern.exec(id);
  if (!match) return undefined;
  const [, y, mo, d, h, mi] = match.map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi);
  return slotIdOf(ms) === id ? ms : undefined; // rejects 20260231T..., 2500Z and the like
}

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number) as [number, number];
  return h * 60 + m;
}
