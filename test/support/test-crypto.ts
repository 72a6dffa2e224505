import { randomBytes } from "node:crypto";
import { PatientSealer } from "../../src/patients/patient-contact.ts";
import { BlindIndex } from "../../src/shared/crypto/blind-index.ts";
import { EnvelopeCipher } from "../../src/shared/crypto/envelope.ts";
import { type FieldCrypto, fieldCryptoOf } from "../../src/shared/crypto/field-crypto.ts";
import { parseKeyRing } from "../../src/shared/crypto/key-ring.ts";

/** Field encryption with fresh random keys (a KEK ring of one key, a blind index key), for tests without a running app. */
export function testFieldCrypto(): FieldCrypto {
  const ring = parseKeyRing(`test=${randomBytes(32).toString("base64")}\n`, "test");
  return fieldCryptoOf(new EnvelopeCipher(ring), new BlindIndex(randomBytes(32)));
}

/** A PatientSealer on fresh keys (a PatientRepository's second argument in tests). */
export function testPatientSealer(crypto: FieldCrypto = testFieldCrypto()): PatientSealer {
  return new PatientSealer(crypto);
}
