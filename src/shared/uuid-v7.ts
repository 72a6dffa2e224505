import { randomInt, randomUUID } from "node:crypto";

let lastMs = -1;
let sequence = 0;

/**
 * A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix milliseconds, a 12-bit
 * sequence, then 62 random bits. Ids made later sort later, so new rows land at the
 * right edge of the primary-key B-tree instead of on random pages, and the id breaks
 * ties between rows created in the same millisecond in creation order.
 *
 * Within this process ids are strictly increasing (RFC 9562, section 6.2, method 1):
 * the sequence starts at a random value each millisecond and counts up; if the clock
 * steps back, or 2048+ ids are made in one millisecond, the timestamp is carried on
 * from the last id instead. The random part comes from `randomUUID()`, which Node
 * serves from a pre-filled entropy cache.
 */
export function uuidV7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = randomInt(0x800); // the lower half, leaving room to count up
  } else if (sequence < 0xfff) {
    sequence += 1;
  } else {
    lastMs += 1;
    sequence = 0;
  }
  const time = lastMs.toString(16).padStart(12, "0");
  const random = randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx: keep the variant and 62 random bits
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${sequence.toString(16).padStart(3, "0")}-${random.slice(19)}`;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for any RFC 9562 UUID in its canonical text form (any version). */
export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}
