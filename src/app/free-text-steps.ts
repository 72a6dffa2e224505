import type { SecretBox } from "../auth/auth-deps.ts";
import { secretBoxFor } from "../auth/auth-parts.ts";
import { loadSecretKey } from "../auth/key-files.ts";
import { consultationEncryptionSteps } from "../consultations/consultation-encryption-step.ts";
import type { DataStep } from "../db/migrate.ts";
import { emergencyEncryptionStep } from "../emergencies/emergency-encryption-step.ts";
import { insightEncryptionStep } from "../insights/insight-encryption-step.ts";
import type { Logger } from "../observability/logger.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";

/** Where the service's secret key is (the auth settings: SECRET_KEY_FILE). */
export interface SecretKeySettings {
  readonly secretKeyFile: string;
  readonly secretKeyConfigured: boolean;
}

/**
 * The data steps of Migration20261129160000_seal_free_text (issue #6, safety 2), run
 * before Migration20261129160100_drop_plaintext_free_text checks and drops: the
 * emergencies' details and cancel reasons and the consultations' cancel reasons sealed,
 * consultation summaries and insight explanations moved from the secret key to envelope
 * encryption. The secret key is read only when a row needs it. Every `migrateUp` of the
 * service and its scripts passes them.
 */
export function freeTextEncryptionSteps(crypto: FieldCrypto, auth: SecretKeySettings, logger?: Logger): DataStep[] {
  const legacyBox = lazySecretBox(auth);
  return [
    emergencyEncryptionStep(crypto, logger),
    ...consultationEncryptionSteps(legacyBox, crypto, logger),
    insightEncryptionStep(legacyBox, crypto, logger),
  ];
}

/** The secret box of SECRET_KEY_FILE, loaded on the first call only (a data step that finds no row reads no key). */
export function lazySecretBox(auth: SecretKeySettings): () => Promise<SecretBox> {
  let box: Promise<SecretBox> | undefined;
  return () => {
    box ??= loadSecretKey(auth.secretKeyFile, { create: !auth.secretKeyConfigured }).then(secretBoxFor);
    return box;
  };
}
