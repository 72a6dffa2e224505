import { Code } from "@connectrpc/connect";
import { statusError } from "../rpc/error-mapping.ts";
import type { DataKeyCache } from "../shared/crypto/data-key-cache.ts";
import { type DataKey, type EnvelopeCipher, EnvelopeError } from "../shared/crypto/envelope.ts";
import type { StoredLocation } from "./emergency-record.ts";
import type { SealingKeys } from "../shared/crypto/field-crypto.ts";

/** What a patient reported that is health data or contact details: sealed together, never in a column of its own. */
export interface EmergencyDetails {
  readonly description: string;
  readonly location: StoredLocation;
  readonly callbackPhone: string;
}

/** The stored form of a new emergency's details. */
export interface SealedEmergency {
  readonly detailsSealed: string;
  readonly dataKeyWrapped: string;
  readonly dataKeyId: string;
}

const table = "emergencies";
const detailsColumn = "details_sealed";
const cancelReasonColumn = "cancel_reason_sealed";

/**
 * Envelope encryption of the `emergencies` rows (issue #6, safety 2), like medical
 * records: each emergency gets its own data key, wrapped by the key ring's current
 * key-encryption key (`data_key_wrapped`, `data_key_id`, so `npm run keys:rotate` can
 * re-wrap it), and its description, location and callback phone are sealed together
 * into `details_sealed`, the cancel reason into `cancel_reason_sealed`; associated data
 * binds each to its row and column. In clear stay what the lane, the relay and the
 * status events work with: kind, severity, priority, state, times, actors and the
 * responding unit.
 *
 * Sealing costs a data key and one AES-GCM pass (tens of microseconds) on
 * CreateEmergency; opening uses the shared cache of opened data keys.
 */
export class EmergencySealer {
  readonly #cipher: EnvelopeCipher;
  readonly #keys: DataKeyCache;

  constructor(keys: SealingKeys) {
    this.#cipher = keys.cipher;
    this.#keys = keys.dataKeys;
  }

  /** A new emergency's data key, and its details sealed under it. */
  seal(emergencyId: string, details: EmergencyDetails): SealedEmergency {
    const key = this.#cipher.newDataKey({ table, row: emergencyId });
    this.#keys.remember(key);
    return {
      detailsSealed: key.sealText(detailsColumn, JSON.stringify(detailsOf(details))),
      dataKeyWrapped: key.wrapped,
      dataKeyId: key.keyId,
    };
  }

  /** The details of a stored row; DATA_LOSS when they do not open (copied, tampered, or the key is gone). */
  open(emergencyId: string, dataKeyWrapped: string, detailsSealed: string): EmergencyDetails {
    return guard(emergencyId, () => {
      const parsed = JSON.parse(this.#key(emergencyId, dataKeyWrapped).openText(detailsColumn, detailsSealed));
      return detailsOf(parsed as EmergencyDetails);
    });
  }

  /** A cancel reason, sealed under the row's data key; null for none. */
  sealCancelReason(emergencyId: string, dataKeyWrapped: string, reason: string): string | null {
    return reason === "" ? null : this.#key(emergencyId, dataKeyWrapped).sealText(cancelReasonColumn, reason);
  }

  openCancelReason(emergencyId: string, dataKeyWrapped: string, sealed: string | null): string | null {
    if (sealed === null) return null;
    return guard(emergencyId, () => this.#key(emergencyId, dataKeyWrapped).openText(cancelReasonColumn, sealed));
  }

  #key(emergencyId: string, wrapped: string): DataKey {
    return this.#keys.open(wrapped, { table, row: emergencyId });
  }
}

/** Only the three fields, whatever else the object carries. */
function detailsOf(details: EmergencyDetails): EmergencyDetails {
  return { description: details.description, location: details.location, callbackPhone: details.callbackPhone };
}

function guard<T>(emergencyId: string, open: () => T): T {
  try {
    return open();
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error;
    throw statusError(
      Code.DataLoss,
      "RECORD_INTEGRITY_CHECK_FAILED",
      "A stored emergency failed its integrity check. Quote the request id when reporting it.",
      [],
      { emergency: emergencyId },
    );
  }
}
