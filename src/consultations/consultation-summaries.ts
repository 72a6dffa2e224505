import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  type ConsultationSummary,
  ConsultationSummarySchema,
  type Record as RecordProto,
  RecordKind,
  RecordSchema,
  RecordSource,
} from "../../gen/telemed/patient/v1/record_pb.js";
import type { DataKeyCache } from "../shared/crypto/data-key-cache.ts";
import type { DataKey, EnvelopeCipher } from "../shared/crypto/envelope.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import { type Consultation, consultationNameOf } from "./consultation.ts";
import type { ConsultationActor } from "./consultation.ts";
import type { SealingKeys } from "../shared/crypto/field-crypto.ts";

/** A stored summary (`consultation_summaries`), opened. */
export interface StoredSummary {
  readonly id: string;
  readonly consultationId: string;
  readonly patientId: string;
  readonly summary: ConsultationSummary;
  readonly author: ConsultationActor;
  readonly attachRequestId: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface SummaryRow {
  readonly id: string;
  readonly consultation_id: string;
  readonly patient_id: string;
  readonly summary_sealed: string;
  readonly data_key_wrapped: string;
  readonly author: string;
  readonly author_role: string;
  readonly attach_request_id: string;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
}

/** Where summaries are sealed: their table and column (envelope associated data). */
export const summaryTable = "consultation_summaries";
export const summaryColumn = "summary_sealed";

/**
 * The doctors' consultation summaries: one per consultation, replaced when attached
 * again, sealed at rest like medical records (issue #6): protobuf binary under the
 * row's own data key, wrapped by the key ring (`data_key_wrapped`, `data_key_id`, so
 * `npm run keys:rotate` re-wraps it), bound to the table, column and row. The records
 * context shows them in the history as `patients/{p}/records/{id}` of kind
 * CONSULTATION_SUMMARY.
 */
export class ConsultationSummaries {
  readonly #cipher: EnvelopeCipher;
  readonly #keys: DataKeyCache;

  constructor(keys: SealingKeys) {
    this.#cipher = keys.cipher;
    this.#keys = keys.dataKeys;
  }

  /** The summaries of these consultations, by consultation id (one query). */
  async findMany(em: EntityManager, consultationIds: readonly string[]): Promise<Map<string, StoredSummary>> {
    if (consultationIds.length === 0) return new Map();
    const rows = await em.execute<SummaryRow[]>(
      `select * from "consultation_summaries" where "consultation_id" in (?)`,
      [consultationIds],
      "all",
    );
    return new Map(rows.map((row) => [row.consultation_id, this.#fromRow(row)]));
  }

  /** The summary of a consultation, if any. */
  async find(em: EntityManager, consultationId: string): Promise<StoredSummary | undefined> {
    const row = await em.execute<SummaryRow>(
      `select * from "consultation_summaries" where "consultation_id" = ?`,
      [consultationId],
      "get",
    );
    return row === undefined ? undefined : this.#fromRow(row);
  }

  /**
   * Stores (or replaces) the summary in `em`'s transaction; keeps the record id and data
   * key of an earlier one. The caller holds the consultation's row lock (a change of
   * the consultation), so two attaches of one consultation do not race.
   */
  async put(
    em: EntityManager,
    consultation: Consultation,
    summary: ConsultationSummary,
    author: ConsultationActor,
    requestId: string,
    now: Date,
  ): Promise<void> {
    const stamp = now.toISOString();
    const binary = toBinary(ConsultationSummarySchema, summary);
    const [existing] = await em.execute<Array<{ id: string; data_key_wrapped: string }>>(
      `select "id", "data_key_wrapped" from "consultation_summaries" where "consultation_id" = ? for update`,
      [consultation.id],
      "all",
    );
    if (existing !== undefined) {
      const key = this.#key(existing.id, existing.data_key_wrapped);
      await em.execute(
        `update "consultation_summaries" set "summary_sealed" = ?, "author" = ?, "author_role" = ?, ` +
          `"attach_request_id" = ?, "updated_at" = ? where "id" = ?`,
        [key.seal(summaryColumn, binary), author.principal, author.role, requestId, stamp, existing.id],
        "run",
      );
      return;
    }
    const id = uuidV7(now.getTime());
    const key = this.#cipher.newDataKey({ table: summaryTable, row: id });
    this.#keys.remember(key);
    await em.execute(
      `insert into "consultation_summaries" ("id", "consultation_id", "patient_id", "summary_sealed", ` +
        `"data_key_wrapped", "data_key_id", "author", "author_role", "attach_request_id", "created_at", "updated_at") ` +
        `values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id,
        consultation.id,
        consultation.patientId,
        key.seal(summaryColumn, binary),
        key.wrapped,
        key.keyId,
        author.principal,
        author.role,
        requestId,
        stamp,
        stamp,
      ],
      "run",
    );
  }

  /** The history record of a summary. */
  toRecord(stored: StoredSummary, consultation: Consultation): RecordProto {
    return create(RecordSchema, {
      name: `patients/${stored.patientId}/records/${stored.id}`,
      kind: RecordKind.CONSULTATION_SUMMARY,
      effectiveTime: timestampFromMs((consultation.actualEndTime ?? consultation.startTime).getTime()),
      consultation: consultationNameOf(consultation),
      author: {
        principal: stored.author.principal,
        role:
          stored.author.role === "doctor"
            ? ActorRole.DOCTOR
            : stored.author.role === "admin"
              ? ActorRole.ADMIN
              : ActorRole.SERVICE,
        displayName: stored.author.role === "doctor" ? consultation.doctorDisplayName : "",
      },
      source: stored.author.role === "service" ? RecordSource.SERVICE : RecordSource.CLINICIAN,
      details: { case: "consultationSummary", value: stored.summary },
      createTime: timestampFromMs(stored.createdAt.getTime()),
      updateTime: timestampFromMs(stored.updatedAt.getTime()),
    });
  }

  #key(id: string, wrapped: string): DataKey {
    return this.#keys.open(wrapped, { table: summaryTable, row: id });
  }

  #fromRow(row: SummaryRow): StoredSummary {
    const binary = this.#key(row.id, row.data_key_wrapped).open(summaryColumn, row.summary_sealed);
    return {
      id: row.id,
      consultationId: row.consultation_id,
      patientId: row.patient_id,
      summary: fromBinary(ConsultationSummarySchema, binary),
      author: { principal: row.author, role: row.author_role as ConsultationActor["role"] },
      attachRequestId: row.attach_request_id,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    };
  }
}

/** The secret-box context summaries were sealed with before issue #6 (the migration's data step opens them). */
export function legacySummaryContext(consultationId: string): string {
  return `consultation-summary:${consultationId}`;
}
