import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomFillSync,
} from "node:crypto";
import type { KeyRing } from "./key-ring.ts";

/**
 * Why a wrapped key or a sealed field could not be opened. The message names the
 * table, column and row at most, never the value: it may end up in a log.
 */
export class EnvelopeError extends Error {
  override readonly name = "EnvelopeError";
}

/** The row a data key belongs to: its table and primary key. */
export interface RowBinding {
  readonly table: string;
  readonly row: string;
}

const algorithm = "aes-256-gcm";
const ivLength = 12;
const tagLength = 16;
const keyFormat = "ek1";
const fieldFormat = "ef1";

/**
 * Envelope encryption of database fields (AES-256-GCM, node:crypto). Every row gets
 * its own random 256-bit data key; the data key is stored wrapped (encrypted) by a
 * key-encryption key (KEK) from the key ring, with the KEK's id in clear so keys can
 * rotate: the ring's current KEK wraps new data keys at once, older KEKs still unwrap
 * what they wrapped, and a rotation job re-wraps rows (`rewrap`) without touching
 * their fields.
 *
 * Associated data binds every ciphertext to where it belongs: a wrapped data key to
 * its table and row, a field to its table, column and row. A ciphertext copied to
 * another row or column, a wrapped key copied along with it, or any flipped bit fails
 * to open with `EnvelopeError` instead of decrypting to another record's content.
 *
 * Formats (base64url parts): wrapped key `ek1.<kek id>.<iv>.<ciphertext+tag>`,
 * field `ef1.<iv>.<ciphertext+tag>`.
 *
 * Keys are held as KeyObjects: node:crypto turns a raw key Buffer into one on every
 * `createCipheriv`, which cost ~9 µs of a ~10 µs field decryption here.
 */
export class EnvelopeCipher {
  readonly #ring: KeyRing;
  readonly #keks: ReadonlyMap<string, KeyObject>;

  constructor(ring: KeyRing) {
    this.#ring = ring;
    this.#keks = new Map([...ring.keys].map(([id, key]) => [id, createSecretKey(key)]));
  }

  /** Id of the KEK that wraps new data keys. */
  get currentKeyId(): string {
    return this.#ring.currentKeyId;
  }

  /** A fresh data key for a row, wrapped under the current KEK. */
  newDataKey(binding: RowBinding): DataKey {
    const plain = random(32);
    return new DataKey(binding, plain, this.#wrap(plain, binding), this.#ring.currentKeyId);
  }

  /** Unwraps a row's stored data key; `EnvelopeError` when it does not belong to this row or the KEK is unknown. */
  openDataKey(wrapped: string, binding: RowBinding): DataKey {
    const { plain, keyId } = this.#unwrap(wrapped, binding);
    return new DataKey(binding, plain, wrapped, keyId);
  }

  /** The same data key wrapped under the current KEK (key rotation); the fields stay as they are. */
  rewrap(wrapped: string, binding: RowBinding): { wrapped: string; keyId: string } {
    const { plain } = this.#unwrap(wrapped, binding);
    return { wrapped: this.#wrap(plain, binding), keyId: this.#ring.currentKeyId };
  }

  #unwrap(wrapped: string, binding: RowBinding): { plain: Buffer; keyId: string } {
    const parts = wrapped.split(".");
    if (parts.length !== 4 || parts[0] !== keyFormat) throw new EnvelopeError(`${where(binding)}: not a wrapped key`);
    const [, keyId = "", iv = "", body = ""] = parts;
    const kek = this.#keks.get(keyId);
    if (kek === undefined) {
      throw new EnvelopeError(`${where(binding)}: unknown key-encryption key "${keyId.slice(0, 32)}"`);
    }
    const plain = decrypt(kek, iv, body, keyAad(keyId, binding), () => `${where(binding)}: data key`);
    if (plain.length !== 32) throw new EnvelopeError(`${where(binding)}: data key has the wrong length`);
    return { plain, keyId };
  }

  #wrap(plain: Buffer, binding: RowBinding): string {
    const keyId = this.#ring.currentKeyId;
    const kek = this.#keks.get(keyId) as KeyObject;
    return `${keyFormat}.${keyId}.${encrypt(kek, plain, keyAad(keyId, binding))}`;
  }
}

/** One row's data key, opened: seals and opens that row's fields. */
export class DataKey {
  readonly binding: RowBinding;
  /** The stored form: the data key wrapped by the KEK `keyId`. */
  readonly wrapped: string;
  /** Id of the KEK that wrapped it. */
  readonly keyId: string;
  readonly #key: KeyObject;
  /** HMAC keys derived for `mac`, by purpose. */
  readonly #macKeys = new Map<string, KeyObject>();
  /** Associated data of this row's fields, by column: built once per opened key (cached keys are read often). */
  readonly #aads = new Map<string, Buffer>();

  constructor(binding: RowBinding, plain: Buffer, wrapped: string, keyId: string) {
    this.binding = binding;
    this.#key = createSecretKey(plain);
    this.wrapped = wrapped;
    this.keyId = keyId;
  }

  /** Encrypts one field of this row with a fresh IV. */
  seal(column: string, plaintext: Uint8Array): string {
    return `${fieldFormat}.${encrypt(this.#key, plaintext, this.#aad(column))}`;
  }

  /** Decrypts a field sealed for this row and column; `EnvelopeError` otherwise. */
  open(column: string, sealed: string): Buffer {
    const parts = sealed.split(".");
    if (parts.length !== 3 || parts[0] !== fieldFormat) {
      throw new EnvelopeError(`${where(this.binding)}.${column}: not a sealed field`);
    }
    return decrypt(
      this.#key,
      parts[1] as string,
      parts[2] as string,
      this.#aad(column),
      () => `${where(this.binding)}.${column}`,
    );
  }

  #aad(column: string): Buffer {
    let aad = this.#aads.get(column);
    if (aad === undefined) {
      aad = fieldAad(this.binding, column);
      this.#aads.set(column, aad);
    }
    return aad;
  }

  /**
   * HMAC-SHA256 (hex) of `bytes` under a key derived from this data key for `purpose`
   * (HKDF): a fingerprint that can be stored beside the row without revealing what it
   * fingerprints, and that survives re-wrapping (the data key stays the same).
   */
  mac(purpose: string, bytes: Uint8Array): string {
    return createHmac("sha256", this.#macKey(purpose)).update(bytes).digest("hex");
  }

  /** Derives the key of `mac` for `purpose` now, so that a later `mac` does not (a key made ahead of use). */
  prepareMac(purpose: string): void {
    this.#macKey(purpose);
  }

  #macKey(purpose: string): KeyObject {
    let key = this.#macKeys.get(purpose);
    if (key === undefined) {
      const info = lengthPrefixed(["mac", this.binding.table, this.binding.row, purpose]);
      // KeyObjects in and out: node:crypto's checks on a raw key Buffer throw and catch internally (~5 µs each).
      key = createSecretKey(Buffer.from(hkdfSync("sha256", this.#key, Buffer.alloc(0), info, 32)));
      this.#macKeys.set(purpose, key);
    }
    return key;
  }

  /** Convenience for text fields. */
  sealText(column: string, text: string): string {
    return this.seal(column, Buffer.from(text, "utf8"));
  }

  openText(column: string, sealed: string): string {
    return this.open(column, sealed).toString("utf8");
  }
}

/**
 * Random bytes for data keys and IVs, cut from a pool that `randomFillSync` refills
 * 4 KiB at a time (as node:crypto's randomUUID does): one call per ~70 new rows
 * instead of two or three `randomBytes` calls (~1.5 µs each) per row. What is handed
 * out is copied and wiped from the pool.
 */
const randomPool = Buffer.alloc(4096);
let randomPoolOffset = randomPool.length;

function random(size: number): Buffer {
  if (randomPoolOffset + size > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const end = randomPoolOffset + size;
  const bytes = Buffer.from(randomPool.subarray(randomPoolOffset, end));
  randomPool.fill(0, randomPoolOffset, end);
  randomPoolOffset = end;
  return bytes;
}

function encrypt(key: KeyObject, plaintext: Uint8Array, aad: Buffer): string {
  const iv = random(ivLength);
  const cipher = createCipheriv(algorithm, key, iv, { authTagLength: tagLength });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return `${iv.toString("base64url")}.${body.toString("base64url")}`;
}

function decrypt(key: KeyObject, ivText: string, bodyText: string, aad: Buffer, what: () => string): Buffer {
  const iv = Buffer.from(ivText, "base64url");
  const body = Buffer.from(bodyText, "base64url");
  if (iv.length !== ivLength || body.length < tagLength) throw new EnvelopeError(`${what()}: malformed ciphertext`);
  try {
    const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagLength });
    decipher.setAAD(aad);
    decipher.setAuthTag(body.subarray(body.length - tagLength));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - tagLength)), decipher.final()]);
  } catch {
    throw new EnvelopeError(`${what()}: does not authenticate (wrong key, row or column, or tampered)`);
  }
}

function keyAad(keyId: string, binding: RowBinding): Buffer {
  return lengthPrefixed([keyFormat, keyId, binding.table, binding.row, "data-key"]);
}

function fieldAad(binding: RowBinding, column: string): Buffer {
  return lengthPrefixed([fieldFormat, binding.table, column, binding.row]);
}

/** Each part with its length first, so no two lists of parts encode alike. */
function lengthPrefixed(parts: readonly string[]): Buffer {
  let size = 0;
  for (const part of parts) size += 4 + Buffer.byteLength(part, "utf8");
  // Every byte is written below; one buffer instead of two per part (a new record builds three of these).
  const bytes = Buffer.allocUnsafe(size);
  let at = 0;
  for (const part of parts) {
    const length = bytes.write(part, at + 4, "utf8");
    bytes.writeUInt32BE(length, at);
    at += 4 + length;
  }
  return bytes;
}

function where(binding: RowBinding): string {
  return `${binding.table}[${binding.row}]`;
}
