import { join } from "node:path";
import type { EnvReader } from "../config/env-readers.ts";

/** Settings of the medical records context (documented in .env.example and the README). */
export interface RecordConfig {
  /**
   * DATA_ENCRYPTION_KEYS_FILE: the key-encryption keys of field encryption, one
   * `<key id>=<32 bytes base64>` per line; default DATA_DIR/keys/data-encryption-keys,
   * generated when missing (embedded mode only).
   */
  readonly keysFile: string;
  /** DATA_ENCRYPTION_KEYS_FILE was set: the file must exist (a production key is never generated). */
  readonly keysConfigured: boolean;
  /** DATA_ENCRYPTION_KEY_ID: the key that wraps new data keys; unset: the file's last key. */
  readonly currentKeyId: string | undefined;
  /**
   * BLIND_INDEX_KEY_FILE: 32 bytes of base64, the HMAC key of the email blind index
   * (src/shared/crypto/blind-index.ts), separate from the KEKs; default
   * DATA_DIR/keys/blind-index.key, generated when missing.
   */
  readonly blindIndexKeyFile: string;
  /** BLIND_INDEX_KEY_FILE was set: the file must exist (a production key is never generated). */
  readonly blindIndexKeyConfigured: boolean;
  /** RECORD_XRAY_DOWNLOAD_TIMEOUT_SECONDS: the longest one DownloadXray may stream from the X-ray Service. */
  readonly xrayDownloadTimeoutSeconds: number;
  /** RECORD_OFFLINE_BUNDLE_TTL_SECONDS: how long an offline bundle is valid (its JWS `exp`). */
  readonly offlineBundleTtlSeconds: number;
}

/** Reads the records settings; problems are recorded on `read`. */
export function readRecordConfig(read: EnvReader, dataDir: string): RecordConfig {
  const keysFile = read.raw("DATA_ENCRYPTION_KEYS_FILE");
  const blindIndexKeyFile = read.raw("BLIND_INDEX_KEY_FILE");
  const currentKeyId = read.raw("DATA_ENCRYPTION_KEY_ID");
  if (currentKeyId !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(currentKeyId)) {
    read.problem("DATA_ENCRYPTION_KEY_ID", "must be 1 to 32 letters, digits, _ or -");
  }
  return Object.freeze({
    keysFile: keysFile ?? join(dataDir, "keys", "data-encryption-keys"),
    keysConfigured: keysFile !== undefined && read.readableFile("DATA_ENCRYPTION_KEYS_FILE") !== undefined,
    currentKeyId,
    blindIndexKeyFile: blindIndexKeyFile ?? join(dataDir, "keys", "blind-index.key"),
    blindIndexKeyConfigured: blindIndexKeyFile !== undefined && read.readableFile("BLIND_INDEX_KEY_FILE") !== undefined,
    xrayDownloadTimeoutSeconds: read.integer("RECORD_XRAY_DOWNLOAD_TIMEOUT_SECONDS", 300, 10, 3600),
    offlineBundleTtlSeconds: read.integer("RECORD_OFFLINE_BUNDLE_TTL_SECONDS", 604_800, 3600, 7_776_000),
  });
}
