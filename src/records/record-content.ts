import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  type Record as RecordProto,
  RecordKind,
  RecordSchema,
  RecordSource,
} from "../../gen/telemed/patient/v1/record_pb.js";
import type { Logger } from "../observability/logger.ts";
import { statusError } from "../rpc/error-mapping.ts";
import { type DataKey, type EnvelopeCipher, EnvelopeError } from "../shared/crypto/envelope.ts";
import type { DataKeyCache } from "../shared/crypto/data-key-cache.ts";
import type { RecordKindName, RecordSourceName } from "./record-entity.ts";
import type { RecordRow } from "./record-repository.ts";
import type { SealingKeys } from "../shared/crypto/field-crypto.ts";

/** The `details` case of a Record. */
export type DetailsCase = NonNullable<RecordProto["details"]["case"]>;

/** A record's kind: a stored one, or a consultation summary (stored by the consultations context). */
export type AnyKind = RecordKindName | "consultation_summary";

const kindOfCase: Readonly<Record<DetailsCase, AnyKind>> = {
  consultationSummary: "consultation_summary",
  prescription: "prescription",
  testResult: "test_result",
  xrayStudy: "xray_study",
  allergy: "allergy",
  condition: "condition",
  immunization: "immunization",
  bloodGroup: "blood_group",
  patientNote: "patient_note",
};

const enumOfKind: Readonly<Record<AnyKind, RecordKind>> = {
  consultation_summary: RecordKind.CONSULTATION_SUMMARY,
  prescription: RecordKind.PRESCRIPTION,
  test_result: RecordKind.TEST_RESULT,
  xray_study: RecordKind.XRAY_STUDY,
  allergy: RecordKind.ALLERGY,
  condition: RecordKind.CONDITION,
  immunization: RecordKind.IMMUNIZATION,
  blood_group: RecordKind.BLOOD_GROUP,
  patient_note: RecordKind.PATIENT_NOTE,
};

const sourceEnum: Readonly<Record<RecordSourceName, RecordSource>> = {
  clinician: RecordSource.CLINICIAN,
  service: RecordSource.SERVICE,
  patient: RecordSource.PATIENT,
};

const roleEnum: Readonly<Record<string, ActorRole>> = {
  patient: ActorRole.PATIENT,
  doctor: ActorRole.DOCTOR,
  admin: ActorRole.ADMIN,
  service: ActorRole.SERVICE,
};

/** The kind of a record's details; undefined when none is set. */
export function kindOfDetails(record: RecordProto): AnyKind | undefined {
  const detailsCase = record.details.case;
  return detailsCase === undefined ? undefined : kindOfCase[detailsCase];
}

/** The stored kinds a ListRecords filter selects, and whether summaries are in. Empty filter: everything. */
export function kindFilter(kinds: readonly RecordKind[]): { kinds: RecordKindName[] | undefined; summaries: boolean } {
  if (kinds.length === 0) return { kinds: undefined, summaries: true };
  const names = (Object.keys(enumOfKind) as AnyKind[]).filter((name) => kinds.includes(enumOfKind[name]));
  return {
    kinds: names.filter((name): name is RecordKindName => name !== "consultation_summary"),
    summaries: names.includes("consultation_summary"),
  };
}

/**
 * The health data of a record, as sealed: its details, related records, client id and
 * the record it is a sync conflict copy of (a Record message with only those set,
 * protobuf binary). Names, times and authors
 * live in their own columns.
 */
export function contentOf(record: RecordProto): RecordProto {
  return create(RecordSchema, {
    details: record.details,
    relatedRecords: record.relatedRecords,
    clientId: record.clientId,
    conflictOf: record.conflictOf,
  });
}

const table = "medical_records";
/** What a record's fingerprint key is derived for (`DataKey.mac`). */
const fingerprintPurpose = "create-request";
const contentColumn = "content_sealed";
const deleteReasonColumn = "delete_reason_sealed";

/**
 * Seals and opens record content with envelope encryption (one data key per record,
 * bound to this table, the column and the record id). A row whose ciphertext does not
 * authenticate (copied from another row, tampered, or its key is gone) is answered
 * with DATA_LOSS and logged with its id only: neither the answer nor the log carries
 * any of its content.
 */
export class RecordSealer {
  readonly #cipher: EnvelopeCipher;
  readonly #keys: DataKeyCache;
  readonly #logger: Logger;

  /** `keys`: the app's field encryption (its cipher, and the opened data keys every context shares). */
  constructor(keys: SealingKeys, logger: Logger) {
    this.#cipher = keys.cipher;
    this.#keys = keys.dataKeys;
    this.#logger = logger;
  }

  /** A new data key for a new record, with the key of its request's fingerprint already derived. */
  newKey(recordId: string): DataKey {
    const key = this.#cipher.newDataKey({ table, row: recordId });
    key.prepareMac(fingerprintPurpose);
    return key;
  }

  /** Id of the key-encryption key that wraps new data keys now. */
  get currentKeyId(): string {
    return this.#cipher.currentKeyId;
  }

  /** The stored row's data key. */
  keyOf(row: RecordRow): DataKey {
    return this.#guard(row, () => this.#keys.open(row.data_key_wrapped, { table, row: row.id }));
  }

  seal(key: DataKey, content: RecordProto): string {
    return key.seal(contentColumn, toBinary(RecordSchema, contentOf(content)));
  }

  sealDeleteReason(key: DataKey, reason: string): string | null {
    return reason === "" ? null : key.sealText(deleteReasonColumn, reason);
  }

  /** The fingerprint of a create request (what a retry must repeat), under the row's key. */
  fingerprint(key: DataKey, request: RecordProto): string {
    const canonical = create(RecordSchema, {
      effectiveTime: request.effectiveTime,
      consultation: request.consultation,
      relatedRecords: request.relatedRecords,
      clientId: request.clientId,
      details: request.details,
    });
    return key.mac(fingerprintPurpose, toBinary(RecordSchema, canonical));
  }

  /** The row's content, opened with its data key (pass `key` when already opened). */
  open(row: RecordRow, key: DataKey = this.keyOf(row)): RecordProto {
    return this.#guard(row, () => fromBinary(RecordSchema, key.open(contentColumn, row.content_sealed)));
  }

  #guard<T>(row: RecordRow, open: () => T): T {
    try {
      return open();
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error;
      this.#logger.error(
        { record: row.id, patient: row.patient_id, dataKeyId: row.data_key_id, err: { type: error.name } },
        "a stored record failed its integrity check (copied, tampered or its key is missing)",
      );
      throw statusError(
        Code.DataLoss,
        "RECORD_INTEGRITY_CHECK_FAILED",
        "A stored record failed its integrity check and cannot be shown. Quote the request id when reporting it.",
        [],
        { record: recordNameOf(row.patient_id, row.id) },
      );
    }
  }
}

/** `patients/{p}/records/{r}`. */
export function recordNameOf(patientId: string, recordId: string): string {
  return `patients/${patientId}/records/${recordId}`;
}

/** `v<version>`, the etag (AIP-154). */
export function etagOf(version: number): string {
  return `v${version}`;
}

/** The API view of a stored record and its opened content. */
export function recordToProto(row: RecordRow, content: RecordProto): RecordProto {
  return create(RecordSchema, {
    name: recordNameOf(row.patient_id, row.id),
    kind: enumOfKind[row.kind],
    effectiveTime: timestampFromMs(new Date(row.effective_time).getTime()),
    consultation: row.consultation_id === null ? "" : `patients/${row.patient_id}/consultations/${row.consultation_id}`,
    relatedRecords: content.relatedRecords,
    author: { principal: row.author, role: roleEnum[row.author_role] ?? ActorRole.UNSPECIFIED },
    source: sourceEnum[row.source],
    clientId: content.clientId,
    conflictOf: content.conflictOf,
    details: content.details,
    createTime: timestampFromMs(new Date(row.created_at).getTime()),
    updateTime: timestampFromMs(new Date(row.updated_at).getTime()),
    etag: etagOf(row.version),
  });
}

/** The change feed's view of a deleted record: its name, kind and when it was deleted. */
export function tombstoneOf(row: RecordRow): RecordProto {
  return create(RecordSchema, {
    name: recordNameOf(row.patient_id, row.id),
    kind: enumOfKind[row.kind],
    deleteTime: timestampFromMs(new Date(row.deleted_at ?? row.updated_at).getTime()),
    etag: etagOf(row.version),
  });
}
