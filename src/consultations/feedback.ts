import type { EntityManager } from "@mikro-orm/postgresql";
import type { CallAudit } from "../audit/call-audit.ts";
import type { SecretBox } from "../auth/auth-deps.ts";
import type { Clock } from "../shared/clock.ts";
import { alreadyExists, DomainError, notFound } from "../shared/domain-errors.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import type { ConsultationRepository } from "./consultation-repository.ts";
import { requireEtag } from "./consultation-mapping.ts";
import { feedbackEditDeadline, requireFeedbackEditable } from "./consultation-rules.ts";
import type { PlatformFeedbackCategory } from "./feedback-entities.ts";

/** A patient's feedback on a consultation, opened. */
export interface Feedback {
  readonly consultationId: string;
  readonly patientId: string;
  readonly rating: number;
  readonly comment: string;
  readonly editDeadline: Date;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A doctor's aggregated rating: no comment, no patient. */
export interface RatingSummary {
  readonly count: number;
  readonly average: number;
  /** Index 0 counts 1-star ratings … index 4 counts 5-star ratings. */
  readonly stars: readonly number[];
}

/** A new piece of platform feedback. */
export interface NewPlatformFeedback {
  readonly patientId: string;
  readonly requestId: string;
  readonly category: PlatformFeedbackCategory;
  readonly rating: number;
  readonly comment: string;
  readonly appVersion: string;
}

interface FeedbackRow {
  readonly consultation_id: string;
  readonly patient_id: string;
  readonly rating: number;
  readonly comment_sealed: string | null;
  readonly edit_deadline: string | Date;
  readonly version: number;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
}

/**
 * Feedback (secondary requirement 1): a rating and comment on a COMPLETED
 * consultation, once, by its patient, editable until a configured deadline; platform
 * feedback; and doctors' aggregates, which carry counts only. Comments are sealed at rest.
 */
export class FeedbackStore {
  readonly #repository: ConsultationRepository;
  readonly #box: SecretBox;
  readonly #clock: Clock;
  readonly #editWindowMs: number;

  constructor(repository: ConsultationRepository, box: SecretBox, clock: Clock, editWindowMs: number) {
    this.#repository = repository;
    this.#box = box;
    this.#clock = clock;
    this.#editWindowMs = editWindowMs;
  }

  /** Rates a COMPLETED consultation of this patient; ALREADY_EXISTS the second time. */
  async create(
    patientId: string,
    consultationId: string,
    rating: number,
    comment: string,
    audit: CallAudit | undefined,
  ): Promise<Feedback> {
    return this.#repository.fork().transactional(async (em) => {
      const consultation = await this.#repository.lock(em, consultationId);
      if (consultation === undefined || consultation.patientId !== patientId) throw notFound("Consultation");
      if (consultation.state !== "completed") {
        throw new DomainError(
          "failed-precondition",
          "CONSULTATION_NOT_COMPLETED",
          "Only a completed consultation can be rated.",
        );
      }
      const now = this.#clock.now();
      const result = await em.execute<{ affectedRows: number }>(
        `insert into "consultation_feedback" ("consultation_id", "patient_id", "doctor_id", "rating", "comment_sealed", ` +
          `"edit_deadline", "version", "created_at", "updated_at") values (?, ?, ?, ?, ?, ?, 1, ?, ?) ` +
          `on conflict ("consultation_id") do nothing`,
        [
          consultationId,
          patientId,
          consultation.doctorId,
          rating,
          this.#seal(comment, consultationId),
          new Date(feedbackEditDeadline(now.getTime(), this.#editWindowMs)).toISOString(),
          now.toISOString(),
          now.toISOString(),
        ],
        "run",
      );
      if (result.affectedRows !== 1) {
        throw alreadyExists("FEEDBACK_ALREADY_EXISTS", "This consultation already has your feedback; edit it instead.");
      }
      await audit?.within(em);
      return this.#required(em, patientId, consultationId);
    });
  }

  /** The feedback, for its author (the pipeline checked the patient) or an admin. */
  async get(patientId: string, consultationId: string): Promise<Feedback> {
    return this.#required(this.#repository.fork(), patientId, consultationId);
  }

  /** Changes rating and/or comment before the edit deadline, guarded by the etag. */
  async update(
    patientId: string,
    consultationId: string,
    changes: { rating?: number; comment?: string },
    etag: string,
    audit: CallAudit | undefined,
  ): Promise<Feedback> {
    return this.#repository.fork().transactional(async (em) => {
      const row = await em.execute<FeedbackRow>(
        `select * from "consultation_feedback" where "consultation_id" = ? and "patient_id" = ? for update`,
        [consultationId, patientId],
        "get",
      );
      if (row === undefined) throw notFound("ConsultationFeedback");
      requireEtag(etag, row.version, "feedback");
      const now = this.#clock.now();
      requireFeedbackEditable(now.getTime(), new Date(row.edit_deadline).getTime());
      await em.execute(
        `update "consultation_feedback" set "rating" = ?, "comment_sealed" = ?, "version" = "version" + 1, ` +
          `"updated_at" = ? where "consultation_id" = ?`,
        [
          changes.rating ?? row.rating,
          changes.comment === undefined ? row.comment_sealed : this.#seal(changes.comment, consultationId),
          now.toISOString(),
          consultationId,
        ],
        "run",
      );
      await audit?.within(em);
      return this.#required(em, patientId, consultationId);
    });
  }

  /** A doctor's ratings, aggregated. */
  async ratingOf(doctorId: string): Promise<RatingSummary> {
    return (await this.ratingsOf([doctorId])).get(doctorId) ?? emptyRating();
  }

  /** Several doctors' ratings in one query (a directory page). */
  async ratingsOf(doctorIds: readonly string[]): Promise<Map<string, RatingSummary>> {
    const result = new Map<string, RatingSummary>();
    if (doctorIds.length === 0) return result;
    const rows = await this.#repository
      .fork()
      .execute<{ doctor_id: string; rating: number; n: string | number }[]>(
        `select "doctor_id", "rating", count(*) as "n" from "consultation_feedback" where "doctor_id" in (?) ` +
          `group by "doctor_id", "rating"`,
        [doctorIds],
        "all",
      );
    for (const row of rows) {
      const current = result.get(row.doctor_id) ?? emptyRating();
      const stars = [...current.stars];
      stars[row.rating - 1] = (stars[row.rating - 1] ?? 0) + Number(row.n);
      const count = stars.reduce((a, b) => a + b, 0);
      const average = stars.reduce((sum, n, i) => sum + n * (i + 1), 0) / count;
      result.set(row.doctor_id, { count, average: Math.round(average * 100) / 100, stars });
    }
    return result;
  }

  /** Records platform feedback; a retry with the same request id returns the first record. */
  async createPlatform(
    feedback: NewPlatformFeedback,
    audit: CallAudit | undefined,
  ): Promise<{ id: string; createdAt: Date }> {
    return this.#repository.fork().transactional(async (em) => {
      const now = this.#clock.now();
      const id = uuidV7(now.getTime());
      const inserted = await em.execute<{ affectedRows: number }>(
        `insert into "platform_feedback" ("id", "patient_id", "create_request_id", "category", "rating", ` +
          `"comment_sealed", "app_version", "created_at") values (?, ?, ?, ?, ?, ?, ?, ?) ` +
          `on conflict on constraint "platform_feedback_create_request_unique" do nothing`,
        [
          id,
          feedback.patientId,
          feedback.requestId,
          feedback.category,
          feedback.rating,
          this.#box.seal(feedback.comment, `platform-feedback:${feedback.patientId}`),
          feedback.appVersion,
          now.toISOString(),
        ],
        "run",
      );
      if (inserted.affectedRows === 1)
        await audit?.within(em, { resource: `patients/${feedback.patientId}/platformFeedback/${id}` });
      const row = await em.execute<{ id: string; created_at: string | Date }>(
        `select "id", "created_at" from "platform_feedback" where "patient_id" = ? and "create_request_id" = ?`,
        [feedback.patientId, feedback.requestId],
        "get",
      );
      if (row === undefined) throw new Error("platform feedback cannot be read back");
      return { id: row.id, createdAt: new Date(row.created_at) };
    });
  }

  async #required(em: EntityManager, patientId: string, consultationId: string): Promise<Feedback> {
    const row = await em.execute<FeedbackRow>(
      `select * from "consultation_feedback" where "consultation_id" = ? and "patient_id" = ?`,
      [consultationId, patientId],
      "get",
    );
    if (row === undefined) throw notFound("ConsultationFeedback");
    return {
      consultationId: row.consultation_id,
      patientId: row.patient_id,
      rating: row.rating,
      comment: row.comment_sealed === null ? "" : this.#box.open(row.comment_sealed, `feedback:${row.consultation_id}`),
      editDeadline: new Date(row.edit_deadline),
      version: row.version,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    };
  }

  #seal(comment: string, consultationId: string): string | null {
    return comment === "" ? null : this.#box.seal(comment, `feedback:${consultationId}`);
  }
}

function emptyRating(): RatingSummary {
  return { count: 0, average: 0, stars: [0, 0, 0, 0, 0] };
}
