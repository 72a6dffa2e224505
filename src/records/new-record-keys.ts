import type { Clock } from "../shared/clock.ts";
import type { DataKey } from "../shared/crypto/envelope.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import type { RecordSealer } from "./record-content.ts";

/** A new record's id and its data key (bound to that id: wrapped with it as associated data). */
export interface NewRecordKey {
  readonly id: string;
  readonly key: DataKey;
}

interface Made extends NewRecordKey {
  /** When it was made, by the service's clock (the time in the id). */
  readonly at: number;
}

/** Tuning; the defaults suit the benchmark's waves of 64 creates. */
export interface NewRecordKeysOptions {
  /** Keys kept ready; 64 by default. */
  readonly capacity?: number;
  /** A ready key older than this is dropped unused, so a record's id stays close to its creation; 1000 ms by default. */
  readonly maxAgeMs?: number;
}

/** Keys made per turn of the event loop while refilling: short enough not to hold up I/O for long (~25 µs each). */
const perTurn = 8;

/**
 * Ids and data keys for new records, made ahead of use. Making one (a random key,
 * its AES-GCM wrap under the key-encryption key, the HKDF of its fingerprint key) is
 * ~25 µs of a create's ~185 µs, and creates arrive in waves whose group statement
 * then leaves the process idle for milliseconds: the keys are made in that idle time,
 * a few per turn of the event loop (setImmediate), and taken by the next wave.
 *
 * Each key is used once, for the id it was made with. One older than `maxAgeMs`, or
 * from a time after the clock's now (a test clock moved back), or wrapped under a
 * key-encryption key that is no longer the current one, is dropped. Nothing is made
 * while no record is created: a refill follows a take.
 */
export class NewRecordKeys {
  readonly #sealer: RecordSealer;
  readonly #clock: Clock;
  readonly #capacity: number;
  readonly #maxAgeMs: number;
  readonly #ready: Made[] = [];
  #refilling = false;

  constructor(sealer: RecordSealer, clock: Clock, options: NewRecordKeysOptions = {}) {
    this.#sealer = sealer;
    this.#clock = clock;
    this.#capacity = Math.max(0, options.capacity ?? 64);
    this.#maxAgeMs = options.maxAgeMs ?? 1000;
  }

  /** An id and key for a record created at `now`: a ready one if it is fresh, else one made now. */
  take(now: Date): NewRecordKey {
    const at = now.getTime();
    this.#refill();
    for (let made = this.#ready.shift(); made !== undefined; made = this.#ready.shift()) {
      if (made.at <= at && at - made.at < this.#maxAgeMs && made.key.keyId === this.#sealer.currentKeyId) {
        return made;
      }
    }
    return this.#make(at);
  }

  #make(at: number): Made {
    const id = uuidV7(at);
    return { id, key: this.#sealer.newKey(id), at };
  }

  #refill(): void {
    if (this.#refilling || this.#ready.length >= this.#capacity) return;
    this.#refilling = true;
    setImmediate(() => {
      this.#refilling = false;
      for (let i = 0; i < perTurn && this.#ready.length < this.#capacity; i++) {
        this.#ready.push(this.#make(this.#clock.now().getTime()));
      }
      if (this.#ready.length < this.#capacity) this.#refill();
    });
  }
}
