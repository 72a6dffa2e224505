/** A calendar date in some time zone. */
export interface LocalDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  /** ISO weekday: 1 Monday .. 7 Sunday. */
  readonly weekday: number;
}

/** A calendar date and time of day in some time zone. */
export interface LocalTime extends LocalDate {
  /** Minutes since local midnight. */
  readonly minutes: number;
}

const dayMs = 86_400_000;

/**
 * Converts between instants and wall-clock time in IANA time zones with the
 * platform's Intl data, so doctors' working hours follow daylight saving time
 * without a time-zone library. Formatters are cached per instance (they are slow
 * to build), not per module.
 */
export class ZonedTime {
  readonly #formats = new Map<string, Intl.DateTimeFormat>();

  /** The wall-clock time of an instant in `timeZone`. */
  local(instantMs: number, timeZone: string): LocalTime {
    const parts: Record<string, number> = {};
    for (const part of this.#format(timeZone).formatToParts(new Date(instantMs))) {
      if (part.type !== "literal") parts[part.type] = Number(part.value);
    }
    const year = parts.year ?? 1970;
    const month = parts.month ?? 1;
    const day = parts.day ?? 1;
    const minutes = (parts.hour ?? 0) * 60 + (parts.minute ?? 0);
    return { year, month, day, weekday: isoWeekday(year, month, day), minutes };
  }

  /**
   * The instant at which the wall clock in `timeZone` shows `minutes` after midnight
   * of the given date. In a DST gap the time does not exist and the result is shifted
   * by the gap; in an overlap the earlier instant is returned.
   */
  toInstant(year: number, month: number, day: number, minutes: number, timeZone: string): number {
    const wall = Date.UTC(year, month - 1, day, 0, minutes);
    const first = wall - this.#offset(wall, timeZone);
    const second = wall - this.#offset(first, timeZone);
    return Math.min(first, second);
  }

  /** The local dates that [startMs, endMs) touches in `timeZone`, with their ISO weekdays. */
  localDays(startMs: number, endMs: number, timeZone: string): LocalDate[] {
    const first = this.local(startMs, timeZone);
    const last = this.local(Math.max(startMs, endMs - 1), timeZone);
    const out: LocalDate[] = [];
    for (
      let t = Date.UTC(first.year, first.month - 1, first.day);
      t <= Date.UTC(last.year, last.month - 1, last.day);
      t += dayMs
    ) {
      const d = new Date(t);
      const [year, month, day] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
      out.push({ year, month, day, weekday: isoWeekday(year, month, day) });
    }
    return out;
  }

  /** Milliseconds the zone is ahead of UTC at an instant. */
  #offset(instantMs: number, timeZone: string): number {
    const t = this.local(instantMs, timeZone);
    const wall = Date.UTC(t.year, t.month - 1, t.day, 0, t.minutes);
    return wall - Math.floor(instantMs / 60_000) * 60_000;
  }

  #format(timeZone: string): Intl.DateTimeFormat {
    let format = this.#formats.get(timeZone);
    if (format === undefined) {
      format = new Intl.DateTimeFormat("en-US", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
      });
      this.#formats.set(timeZone, format);
    }
    return format;
  }
}

function isoWeekday(year: number, month: number, day: number): number {
  const sunday0 = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  return sunday0 === 0 ? 7 : sunday0;
}
