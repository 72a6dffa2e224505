import { createHmac, createSecretKey, type KeyObject } from "node:crypto";

/**
 * A blind index of email addresses: HMAC-SHA-256 (hex) of the normalised address
 * (trimmed, lower-cased) under a key of its own, not the key-encryption keys. Equal
 * addresses give equal indexes, so a unique index and look-ups by email work on it,
 * while the database alone (a dump, a replica, a log of its statements) does not
 * tell which address a row has, nor lets anyone test a guessed address without the key.
 *
 * The key cannot rotate like the KEKs: a new key changes every index, which would need
 * every address decrypted and indexed again (not implemented). Keep it as long as the data.
 */
export class BlindIndex {
  readonly #key: KeyObject;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new Error("the blind index key must be 32 bytes");
    this.#key = createSecretKey(key);
  }

  /** The index of an email address; addresses that differ only in case or surrounding spaces share it. */
  email(address: string): string {
    return createHmac("sha256", this.#key).update(normaliseEmail(address), "utf8").digest("hex");
  }
}

/** An email address as it is indexed and stored: trimmed and lower-cased. */
export function normaliseEmail(address: string): string {
  return address.trim().toLowerCase();
}
