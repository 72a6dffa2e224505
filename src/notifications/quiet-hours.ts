/** Daily quiet hours in minutes after local midnight; `start > end` spans midnight (22:00-07:00). */
export interface QuietHours {
  readonly startMinute: number;
  readonly endMinute: number;
}

/**
 * When the quiet period that contains `now` ends, in `timeZone`; undefined when `now`
 * is not in quiet hours. Pure: time zones come from the runtime's ICU data, so a
 * daylight-saving change is handled by resolving the local end time to an instant.
 */
export function quietPeriodEnd(now: Date, quiet: QuietHours, timeZone: string): Date | undefined {
  const { startMinute, endMinute } = quiet;
  if (startMinute === endMinute) return undefined;
  const local = localParts(now, timeZone);
  const minute = local.hour * 60 + local.minute;
  const spansMidnight = startMinute > endMinute;
  const inside = spansMidnight
    ? minute >= startMinute || minute < endMinute
    : minute >= startMinute && minute < endMinute;
  if (!inside) return undefined;
  // Before the end on the same local day, or (spanning midnight, after the start) the next day.
  const dayOffset = minute < endMinute ? 0 : 1;
  const end = zonedInstant(
    local.year,
    local.month,
    local.day + dayOffset,
    Math.floor(endMinute / 60),
    endMinute % 60,
    timeZone,
  );
  // A wall time skipped by a DST jump resolves a little early or late; never before now.
  return end.getTime() > now.getTime() ? end : new Date(now.getTime() + 60_000);
}

interface LocalParts {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function localParts(instant: Date, timeZone: string): LocalParts {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, formatter);
  }
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(instant)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year as number,
    month: parts.month as number,
    day: parts.day as number,
    hour: parts.hour as number,
    minute: parts.minute as number,
  };
}

/** The instant when the wall clock of `timeZone` shows the given local time (day may overflow the month). */
function zonedInstant(year: number, month: number, day: number, hour: number, minute: number, timeZone: string): Date {
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  let guess = wall;
  // Two rounds settle the offset, also across a DST change between guess and answer.
  for (let round = 0; round < 2; round++) {
    const seen = localParts(new Date(guess), timeZone);
    const seenWall = Date.UTC(seen.year, seen.month - 1, seen.day, seen.hour, seen.minute);
    guess += wall - seenWall;
  }
  return new Date(guess);
}
