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
import type { SecretBox } from "../auth/auth-deps.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import { type Consultation, consultationNameOf } from "./consultation.ts";
import type { ConsultationActor } from "./consultation.ts";

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
  readonly author: string;
  readonly author_role: string;
  readonly attach_request_id: string;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
}

/**
 * The doctors' consultation summaries: one per consultation, replaced when attached
 * again, sealed at rest (protobuf binary, base64, in the secret box, bound to the
 * summary's consultation). The records context (issue #6) shows them in the history
 * as `patients/{p}/records/{id}` of kind CONSULTATION_SUMMARY.
 */
export class ConsultationSummaries {
  readonly #box: SecretBox;

  constructor(box: SecretBox) {
    this.#box = box;
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

  /** Stores (or replaces) the summary in `em`'s transaction; keeps the record id of an earlier one. */
  async put(
    em: EntityManager,
    consultation: Consultation,
    summary: ConsultationSummary,
    author: ConsultationActor,
    requestId: string,
    now: Date,
  ): Promise<void> {
    const sealed = this.#box.seal(
      Buffer.from(toBinary(ConsultationSummarySchema, summary)).toString("base64"),
      contextOf(consultation.id),
    );
    const stamp = now.toISOString();
    await em.execute(
      `insert into "consultation_summaries" ("id", "consultation_id", "patient_id", "summary_sealed", "author", ` +
        `"author_role", "attach_request_id", "created_at", "updated_at") values (?, ?, ?, ?, ?, ?, ?, ?, ?) ` +
        `on conflict ("consultation_id") do update set "summary_sealed" = excluded."summary_sealed", ` +
        `"author" = excluded."author", "author_role" = excluded."author_role", ` +
        `"attach_request_id" = excluded."attach_request_id", "updated_at" = excluded."updated_at"`,
      [
        uuidV7(now.getTime()),
        consultation.id,
        consultation.patientId,
        sealed,
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

  #fromRow(row: SummaryRow): StoredSummary {
    const binary = Buffer.from(this.#box.open(row.summary_sealed, contextOf(row.consultation_id)), "base64");
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

function contextOf(consultationId: string): string {
  return `consultation-summary:${consultationId}`;
}
