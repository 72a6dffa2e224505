import { loadSecretKey } from "../../auth/key-files.ts";
import { BlindIndex } from "./blind-index.ts";
import { DataKeyCache } from "./data-key-cache.ts";
import { EnvelopeCipher } from "./envelope.ts";
import { loadKeyRing } from "./key-ring.ts";

/** Where the keys of field encryption come from (the records settings, src/records/record-config.ts). */
export interface FieldCryptoSettings {
  readonly keysFile: string;
  readonly keysConfigured: boolean;
  readonly currentKeyId: string | undefined;
  readonly blindIndexKeyFile: string;
  readonly blindIndexKeyConfigured: boolean;
}

/** Field encryption of every context: the envelope cipher (the KEK ring) and the email blind index. */
export interface FieldCrypto {
  readonly cipher: EnvelopeCipher;
  readonly blindIndex: BlindIndex;
  /** Opened data keys of recent rows (profiles, accounts, records, summaries, emergencies), shared by every context. */
  readonly dataKeys: DataKeyCache;
}

/** What sealing and opening rows needs of the field encryption (not the blind index). */
export type SealingKeys = Pick<FieldCrypto, "cipher" | "dataKeys">;

/**
 * Opened data keys kept: enough for the profiles read in a busy minute (the bench
 * reads 1024), small enough that the key material held stays bounded (~10k entries,
 * a few MB).
 */
const dataKeyCacheEntries = 10_000;

/**
 * Loads the KEK ring (DATA_ENCRYPTION_KEYS_FILE) and the blind index key
 * (BLIND_INDEX_KEY_FILE). Unconfigured (embedded mode, tests), each is generated once
 * under DATA_DIR/keys and kept: a lost key makes what it protected unreadable (or, for
 * the blind index, unfindable by email).
 */
export async function loadFieldCrypto(settings: FieldCryptoSettings): Promise<FieldCrypto> {
  const ring = await loadKeyRing(settings.keysFile, {
    create: !settings.keysConfigured,
    currentKeyId: settings.currentKeyId,
  });
  const blindKey = await loadSecretKey(settings.blindIndexKeyFile, { create: !settings.blindIndexKeyConfigured });
  return fieldCryptoOf(new EnvelopeCipher(ring), new BlindIndex(blindKey));
}

/** The same from keys in hand (tests, scripts that loaded them already). */
export function fieldCryptoOf(cipher: EnvelopeCipher, blindIndex: BlindIndex): FieldCrypto {
  return { cipher, blindIndex, dataKeys: new DataKeyCache(cipher, dataKeyCacheEntries) };
}
