import { randomInt } from "node:crypto";

const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/**
 * A small deterministic generator (mulberry32) for the simulators' ids, tokens and
 * image noise. With a seed, two runs produce the same ids, which makes failures
 * reproducible; without one each simulator instance draws its own. Not for secrets:
 * the simulators have none worth protecting.
 */
export class SeededRandom {
  #state: number;

  constructor(seed: number = randomInt(0, 2 ** 32)) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, max). */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  /** An id of `length` characters from [0-9a-zA-Z], valid in every resource-name pattern of the contracts. */
  id(length = 16): string {
    let out = "";
    for (let i = 0; i < length; i++) out += idAlphabet[this.int(idAlphabet.length)];
    return out;
  }
}
