import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from "node:crypto";

/** Why a sealed value could not be opened; the message never includes the value. */
export class SecretBoxError extends Error {
  override readonly name = "SecretBoxError";
}

/** The keys a box knows: the one new values are sealed with, and older ones still readable. */
export interface SecretBoxKeys {
  /** Id of the key that seals; must be in `keys`. */
  readonly currentKeyId: string;
  /** 32-byte AES-256 keys by id (letters, digits, `_` and `-`, at most 32). */
  readonly keys: ReadonlyMap<string, Uint8Array>;
}

const version = "v1";
const algorithm = "aes-256-gcm";
const ivLength = 12;
const tagLength = 16;
const keyIdPattern = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Encrypts small secrets at rest (the TOTP secret) with AES-256-GCM into
 * `v1.<kid>.<iv>.<ciphertext+tag>` (base64url). The key id lets keys rotate: a new
 * current key seals, old ones stay to open what they sealed. The header and an optional
 * `context` (say the account id) are authenticated too, so a sealed value copied to
 * another account's row does not open there. A wrong key, an unknown key id, a tampered
 * value or another context throws `SecretBoxError`.
 */
export class SecretBox {
  readonly #currentKeyId: string;
  /** KeyObjects: node:crypto turns a raw key Buffer into one on every cipher it makes (~5 µs each). */
  readonly #keys: ReadonlyMap<string, KeyObject>;

  constructor(keys: SecretBoxKeys) {
    const copied = new Map<string, KeyObject>();
    for (const [id, key] of keys.keys) {
      if (!keyIdPattern.test(id)) throw new RangeError(`secret box key id "${id}" must match ${keyIdPattern}`);
      if (key.length !== 32) throw new RangeError(`secret box key "${id}" must be 32 bytes, not ${key.length}`);
      copied.set(id, createSecretKey(Buffer.from(key)));
    }
    if (!copied.has(keys.currentKeyId)) throw new RangeError(`secret box has no key "${keys.currentKeyId}"`);
    this.#currentKeyId = keys.currentKeyId;
    this.#keys = copied;
  }

  /** Encrypts `plain` under the current key with a fresh random IV. */
  seal(plain: string, context = ""): string {
    const header = `${version}.${this.#currentKeyId}`;
    const iv = randomBytes(ivLength);
    const cipher = createCipheriv(algorithm, this.#keys.get(this.#currentKeyId) as KeyObject, iv, {
      authTagLength: tagLength,
    });
    cipher.setAAD(associatedData(header, context));
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return `${header}.${iv.toString("base64url")}.${body.toString("base64url")}`;
  }

  /** Decrypts what `seal` made with the same `context`; throws `SecretBoxError` otherwise. */
  open(sealed: string, context = ""): string {
    const parts = sealed.split(".");
    if (parts.length !== 4 || parts[0] !== version) throw new SecretBoxError("not a sealed value");
    const [, keyId = "", ivText = "", bodyText = ""] = parts;
    const key = this.#keys.get(keyId);
    if (key === undefined) throw new SecretBoxError(`unknown secret box key "${keyId.slice(0, 32)}"`);
    const iv = Buffer.from(ivText, "base64url");
    const body = Buffer.from(bodyText, "base64url");
    if (iv.length !== ivLength || body.length < tagLength) throw new SecretBoxError("malformed sealed value");
    try {
      const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagLength });
      decipher.setAAD(associatedData(`${version}.${keyId}`, context));
      decipher.setAuthTag(body.subarray(body.length - tagLength));
      const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - tagLength)), decipher.final()]);
      return plain.toString("utf8");
    } catch {
      throw new SecretBoxError("sealed value does not authenticate (wrong key, context or tampered)");
    }
  }
}

/** The header and the context, length-prefixed so no two pairs encode alike. */
function associatedData(header: string, context: string): Buffer {
  const headerBytes = Buffer.from(header, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(headerBytes.length);
  return Buffer.concat([length, headerBytes, Buffer.from(context, "utf8")]);
}
