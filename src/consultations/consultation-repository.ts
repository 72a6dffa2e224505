import { type EntityManager, UniqueConstraintViolationException } from "@mikro-orm/postgresql";
import { DomainError } from "../shared/domain-errors.ts";
import {
  type Consultation,
  type ConsultationRecord,
  consultationFromRecord,
  consultationSelect,
} from "./consultation.ts";
import type { ConsultationActorRole, ConsultationModeName } from "./consultation-entity.ts";
import type { ConsultationState } from "./consultation-states.ts";

type SqlValue = string | number | null | readonly string[];

/** A booking to store (state REQUESTED until the Doctor Service confirms the slot). */
export interface NewConsultation {
  readonly id: string;
  readonly patientId: string;
  readonly doctorId: string;
  readonly slotId: string;
  readonly mode: ConsultationModeName;
  readonly reasonSealed: string | undefined;
  readonly startTime: Date;
  readonly endTime: Date;
  readonly doctorDisplayName: string;
  readonly price: { readonly amountMinor: number; readonly currencyCode: string };
  readonly bookedBy: string;
  readonly bookedByRole: ConsultationActorRole;
  readonly holdId: string;
  readonly createRequestId: string;
  readonly createFingerprint: string;
  readonly now: Date;
}

/** Columns a change may set; only the keys present are written. */
export interface ConsultationChanges {
  readonly state?: ConsultationState;
  readonly slotId?: string;
  readonly startTime?: Date;
  readonly endTime?: Date;
  readonly holdId?: string | null;
  readonly appointment?: string | null;
  readonly actualStartTime?: Date;
  readonly actualEndTime?: Date;
  readonly cancellation?: {
    principal: string;
    role: ConsultationActorRole;
    reason: string;
    code: string | null;
    time: Date;
  };
  readonly rescheduled?: { requestId: string };
  readonly bookedAt?: Date;
}

/** Which consultations `list` returns. */
export interface ConsultationQuery {
  readonly patientId: string | undefined;
  readonly doctorId: string | undefined;
  readonly states: readonly ConsultationState[];
  readonly startFrom: Date | undefined;
  readonly startBefore: Date | undefined;
  readonly pageSize: number;
  readonly after: { startMs: number; id: string } | undefined;
}

/** The slot is taken by another live consultation (the database's last word on double booking). */
export function slotTaken(): DomainError {
  return new DomainError(
    "failed-precondition",
    "SLOT_UNAVAILABLE",
    "This time is no longer available. Please choose another slot.",
  );
}

/**
 * Stores consultations in `consultations` with hand-written SQL. Every write takes the
 * caller's transaction, so a change, its notification and its audit entry commit together.
 */
export class ConsultationRepository {
  readonly #em: () => EntityManager;

  constructor(em: () => EntityManager) {
    this.#em = em;
  }

  fork(): EntityManager {
    return this.#em();
  }

  /** The consultation, or undefined. */
  async get(id: string, em: EntityManager = this.#em()): Promise<Consultation | undefined> {
    const record = await em.execute<ConsultationRecord>(`${consultationSelect} where c."id" = ?`, [id], "get");
    return record === undefined ? undefined : consultationFromRecord(record);
  }

  /** The consultation locked for a change until `em`'s transaction ends. */
  async lock(em: EntityManager, id: string): Promise<Consultation | undefined> {
    const record = await em.execute<ConsultationRecord>(
      `${consultationSelect} where c."id" = ? for update of c`,
      [id],
      "get",
    );
    return record === undefined ? undefined : consultationFromRecord(record);
  }

  /**
   * The consultation locked for a reminder, or undefined when it is no longer
   * SCHEDULED or another transaction (a cancel, another replica's reminder) holds it.
   */
  async lockScheduledOrSkip(em: EntityManager, id: string): Promise<Consultation | undefined> {
    const record = await em.execute<ConsultationRecord>(
      `${consultationSelect} where c."id" = ? and c."state" = 'scheduled' for update of c skip locked`,
      [id],
      "get",
    );
    return record === undefined ? undefined : consultationFromRecord(record);
  }

  /** The booking a patient made with this request id, if any (AIP-155). */
  async findByRequest(patientId: string, requestId: string): Promise<Consultation | undefined> {
    const record = await this.#em().execute<ConsultationRecord>(
      `${consultationSelect} where c."patient_id" = ? and c."create_request_id" = ?`,
      [patientId, requestId],
      "get",
    );
    return record === undefined ? undefined : consultationFromRecord(record);
  }

  /**
   * Inserts a booking in `em`'s transaction; false when the patient's request id is
   * taken (a concurrent retry). A slot held by another live consultation is SLOT_UNAVAILABLE.
   */
  async insert(em: EntityManager, row: NewConsultation): Promise<boolean> {
    const stamp = row.now.toISOString();
    const columns = new Map<string, SqlValue>([
      ["id", row.id],
      ["patient_id", row.patientId],
      ["doctor_id", row.doctorId],
      ["slot_id", row.slotId],
      ["mode", row.mode],
      ["reason_sealed", row.reasonSealed ?? null],
      ["state", "requested"],
      ["start_time", row.startTime.toISOString()],
      ["end_time", row.endTime.toISOString()],
      ["doctor_display_name", row.doctorDisplayName],
      ["price_amount_minor", row.price.amountMinor],
      ["price_currency", row.price.currencyCode],
      ["booked_by", row.bookedBy],
      ["booked_by_role", row.bookedByRole],
      ["hold_id", row.holdId],
      ["reschedule_count", 0],
      ["create_request_id", row.createRequestId],
      ["create_fingerprint", row.createFingerprint],
      ["booked_at", stamp],
      ["version", 1],
      ["created_at", stamp],
      ["updated_at", stamp],
    ]);
    const names = [...columns.keys()].map((name) => `"${name}"`);
    const result = await mapSlotConflict(() =>
      em.execute<{ affectedRows: number }>(
        `insert into "consultations" (${names.join(", ")}) values (${names.map(() => "?").join(", ")}) ` +
          `on conflict on constraint "consultations_create_request_unique" do nothing`,
        [...columns.values()],
        "run",
      ),
    );
    return result.affectedRows === 1;
  }

  /**
   * Applies `changes` to the consultation at `version` and bumps the version, in
   * `em`'s transaction; the new row, or undefined when it is at another version.
   */
  async update(
    em: EntityManager,
    id: string,
    version: number,
    changes: ConsultationChanges,
    now: Date,
  ): Promise<Consultation | undefined> {
    const columns = new Map<string, SqlValue>();
    const set = (name: string, value: SqlValue | Date | undefined) => {
      if (value !== undefined) columns.set(name, value instanceof Date ? value.toISOString() : value);
    };
    set("state", changes.state);
    set("slot_id", changes.slotId);
    set("start_time", changes.startTime);
    set("end_time", changes.endTime);
    set("hold_id", changes.holdId);
    set("appointment", changes.appointment);
    set("actual_start_time", changes.actualStartTime);
    set("actual_end_time", changes.actualEndTime);
    set("booked_at", changes.bookedAt);
    if (changes.cancellation !== undefined) {
      set("cancelled_by", changes.cancellation.principal);
      set("cancelled_by_role", changes.cancellation.role);
      set("cancel_reason", changes.cancellation.reason);
      set("cancel_code", changes.cancellation.code);
      set("cancel_time", changes.cancellation.time);
    }
    set("reschedule_request_id", changes.rescheduled?.requestId);
    const assignments = [...columns.keys()].map((name) => `"${name}" = ?`);
    if (changes.rescheduled !== undefined) assignments.push(`"reschedule_count" = "reschedule_count" + 1`);
    assignments.push(`"version" = "version" + 1`, `"updated_at" = ?`);
    const result = await mapSlotConflict(() =>
      em.execute<{ affectedRows: number }>(
        `update "consultations" set ${assignments.join(", ")} where "id" = ? and "version" = ?`,
        [...columns.values(), now.toISOString(), id, version],
        "run",
      ),
    );
    if (result.affectedRows !== 1) return undefined;
    return this.get(id, em);
  }

  /** A page of consultations, soonest start first (ties by id). */
  async list(query: ConsultationQuery): Promise<Consultation[]> {
    const conditions: string[] = [];
    const params: SqlValue[] = [];
    if (query.patientId !== undefined) {
      conditions.push(`c."patient_id" = ?`);
      params.push(query.patientId);
    }
    if (query.doctorId !== undefined) {
      conditions.push(`c."doctor_id" = ?`);
      params.push(query.doctorId);
    }
    if (query.states.length > 0) {
      conditions.push(`c."state" in (?)`);
      params.push(query.states);
    }
    if (query.startFrom !== undefined) {
      conditions.push(`c."start_time" >= ?`);
      params.push(query.startFrom.toISOString());
    }
    if (query.startBefore !== undefined) {
      conditions.push(`c."start_time" < ?`);
      params.push(query.startBefore.toISOString());
    }
    if (query.after !== undefined) {
      conditions.push(`(c."start_time", c."id") > (?, ?)`);
      params.push(new Date(query.after.startMs).toISOString(), query.after.id);
    }
    params.push(query.pageSize + 1);
    const where = conditions.length === 0 ? "" : `where ${conditions.join(" and ")}`;
    const records = await this.#em().execute<ConsultationRecord[]>(
      `${consultationSelect} ${where} order by c."start_time", c."id" limit ?`,
      params,
      "all",
    );
    return records.map(consultationFromRecord);
  }

  /** SCHEDULED consultations starting in (now, now + horizon]: candidates for a reminder. */
  async upcoming(now: Date, horizonMs: number, limit: number): Promise<Consultation[]> {
    const records = await this.#em().execute<ConsultationRecord[]>(
      `${consultationSelect} where c."state" = 'scheduled' and c."start_time" > ? and c."start_time" <= ? ` +
        `order by c."start_time" limit ?`,
      [now.toISOString(), new Date(now.getTime() + horizonMs).toISOString(), limit],
      "all",
    );
    return records.map(consultationFromRecord);
  }

  /** Bookings still REQUESTED that were made before `before`: their confirmation was interrupted. */
  async unconfirmed(before: Date, limit: number): Promise<Consultation[]> {
    const records = await this.#em().execute<ConsultationRecord[]>(
      `${consultationSelect} where c."state" = 'requested' and c."created_at" < ? order by c."created_at" limit ?`,
      [before.toISOString(), limit],
      "all",
    );
    return records.map(consultationFromRecord);
  }
}

async function mapSlotConflict<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (
      error instanceof UniqueConstraintViolationException &&
      (error as { constraint?: string }).constraint === "consultations_slot_live_unique"
    ) {
      throw slotTaken();
    }
    throw error;
  }
}
