import { Code } from "@connectrpc/connect";
import type { Logger } from "../observability/logger.ts";
import { statusError } from "../rpc/error-mapping.ts";
import { normaliseEmail } from "../shared/crypto/blind-index.ts";
import { type DataKey, EnvelopeError } from "../shared/crypto/envelope.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import type { EmergencyContact, Insurance, PatientFields, PostalAddress } from "./patient.ts";

/**
 * What of a profile is sealed: how to reach the patient (email, phone, address), whom
 * to call in an emergency, and the payment and insurance identifiers. Names, birth
 * date, sex and language stay in clear: lists, family rules and the offline bundle
 * read them, and they are not contact or payment data.
 */
export interface SealedFields {
  readonly email: string;
  readonly phone: string;
  readonly address: PostalAddress | undefined;
  readonly emergencyContacts: readonly EmergencyContact[];
  readonly upiId: string;
  readonly insurance: Insurance | undefined;
}

/** The columns a profile's sealed fields are stored in. */
export interface SealedColumns {
  /** The fields, JSON, sealed with the row's data key (AAD: patients, contact_sealed, the row id). */
  readonly contactSealed: string;
  /** The email's blind index (HMAC under BLIND_INDEX_KEY_FILE): the unique index and look-ups use it. */
  readonly emailIndex: string;
  /** The row's data key, wrapped by a KEK (AAD: patients, the row id). */
  readonly dataKeyWrapped: string;
  /** The KEK's id, indexed, so key rotation finds the rows still on an old one. */
  readonly dataKeyId: string;
}

/** The stored columns a read needs to open a row. */
export interface SealedRow {
  readonly id: string;
  readonly contact_sealed: string;
  readonly data_key_wrapped: string;
}

export const patientsTable = "patients";
const contactColumn = "contact_sealed";

/** Whether `changes` touches a sealed field (so the stored ones must be opened and sealed again with it). */
export function touchesSealedFields(changes: Partial<PatientFields>): boolean {
  return (
    changes.contact !== undefined ||
    changes.upiId !== undefined ||
    changes.emergencyContacts !== undefined ||
    "insurance" in changes
  );
}

/** The sealed fields of a profile (or of a change to it, laid over the stored ones). */
export function sealedFieldsOf(fields: Partial<PatientFields>, stored?: SealedFields): SealedFields {
  const contact = fields.contact;
  return {
    email: contact === undefined ? (stored?.email ?? "") : normaliseEmail(contact.email),
    phone: contact === undefined ? (stored?.phone ?? "") : contact.phone,
    address: contact === undefined ? stored?.address : contact.address,
    emergencyContacts: fields.emergencyContacts ?? stored?.emergencyContacts ?? [],
    upiId: fields.upiId ?? stored?.upiId ?? "",
    insurance: "insurance" in fields ? fields.insurance : stored?.insurance,
  };
}

/**
 * Envelope encryption of profiles (issue #6): every profile has its own data key, and
 * its contact, emergency and payment fields are sealed together in one column, so a read
 * costs one AES-GCM decryption (the data key comes from a bounded cache of recently
 * opened ones, or one unwrap). A row that does not open (a ciphertext or wrapped key
 * copied from another row, tampered, or its KEK gone) answers DATA_LOSS and is logged by
 * id only, like a medical record.
 */
export class PatientSealer {
  readonly #crypto: FieldCrypto;
  readonly #logger: Logger | undefined;

  constructor(crypto: FieldCrypto, logger?: Logger) {
    this.#crypto = crypto;
    this.#logger = logger;
  }

  /** The blind index of an email address. */
  emailIndex(email: string): string {
    return this.#crypto.blindIndex.email(email);
  }

  /** The sealed columns of a new profile, under a new data key. */
  sealNew(patientId: string, fields: SealedFields): SealedColumns {
    const key = this.#crypto.cipher.newDataKey({ table: patientsTable, row: patientId });
    this.#crypto.dataKeys.remember(key);
    return this.#columns(key, fields);
  }

  /** The sealed columns of a stored profile with changed fields; its data key stays. */
  reseal(row: SealedRow, fields: SealedFields): SealedColumns {
    return this.#columns(this.#key(row), fields);
  }

  /** The stored row's sealed fields; DATA_LOSS when they do not open for this row. */
  open(row: SealedRow): SealedFields {
    return this.#guard(row, () => {
      const key = this.#crypto.dataKeys.open(row.data_key_wrapped, { table: patientsTable, row: row.id });
      return JSON.parse(key.openText(contactColumn, row.contact_sealed)) as SealedFields;
    });
  }

  #key(row: SealedRow): DataKey {
    return this.#guard(row, () =>
      this.#crypto.dataKeys.open(row.data_key_wrapped, { table: patientsTable, row: row.id }),
    );
  }

  #columns(key: DataKey, fields: SealedFields): SealedColumns {
    const plain: SealedFields = {
      email: fields.email,
      phone: fields.phone,
      address: fields.address,
      emergencyContacts: fields.emergencyContacts,
      upiId: fields.upiId,
      insurance: fields.insurance,
    };
    return {
      contactSealed: key.sealText(contactColumn, JSON.stringify(plain)),
      emailIndex: this.emailIndex(fields.email),
      dataKeyWrapped: key.wrapped,
      dataKeyId: key.keyId,
    };
  }

  #guard<T>(row: SealedRow, open: () => T): T {
    try {
      return open();
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error;
      this.#logger?.error(
        { patient: row.id, err: { type: error.name } },
        "a stored profile failed its integrity check (copied, tampered or its key is missing)",
      );
      throw statusError(
        Code.DataLoss,
        "PATIENT_INTEGRITY_CHECK_FAILED",
        "A stored profile failed its integrity check and cannot be shown. Quote the request id when reporting it.",
        [],
        { patient: `patients/${row.id}` },
      );
    }
  }
}
