import { LRUCache } from "lru-cache";
import type { DataKey, EnvelopeCipher, RowBinding } from "./envelope.ts";

/**
 * Opened data keys, the least recently used dropped first. Opening a row's data key
 * (unwrapping it with the KEK, then making a KeyObject of it) was half of what reading
 * an encrypted record cost, and the same rows are read again and again (a patient's
 * history, page after page). The key is the row binding and the wrapped form, so a
 * wrapped key copied to another row is not found here and fails to unwrap as before;
 * a key that fails is never kept. Plain data keys stay in memory no longer than the
 * process holds the KEKs that unwrap them anyway.
 */
export class DataKeyCache {
  readonly #cipher: EnvelopeCipher;
  readonly #keys: LRUCache<string, DataKey>;

  /** `capacity`: how many opened keys to keep (the app's is in field-crypto.ts). */
  constructor(cipher: EnvelopeCipher, capacity: number) {
    this.#cipher = cipher;
    this.#keys = new LRUCache({ max: Math.max(1, capacity) });
  }

  /** The row's data key, opened once while it stays in the cache; `EnvelopeError` as `openDataKey`. */
  open(wrapped: string, binding: RowBinding): DataKey {
    const id = cacheKey(wrapped, binding);
    let key = this.#keys.get(id);
    if (key === undefined) {
      key = this.#cipher.openDataKey(wrapped, binding);
      this.#keys.set(id, key);
    }
    return key;
  }

  /** Keeps a key just made (`newDataKey`), so the first read of its row needs no unwrap. */
  remember(key: DataKey): void {
    this.#keys.set(cacheKey(key.wrapped, key.binding), key);
  }
}

function cacheKey(wrapped: string, binding: RowBinding): string {
  return `${binding.table}\u0000${binding.row}\u0000${wrapped}`;
}
