import { createHash, randomBytes } from "node:crypto";
import type pg from "pg";
import { uuidV7 } from "../src/shared/uuid-v7.ts";
import { benchReason } from "./book-consultation-frames.ts";
import { failChild } from "./child-ipc.ts";
import { benchRequestId, type SlotRange, SlotSequence } from "./consultation-slots.ts";
import { runPgDriver } from "./pg-driver.ts";
import type { PgChildBasics } from "./pg-targets.ts";

/** What the consultation targets ask of this driver. */
export interface ConsultationPgLoadOptions extends PgChildBasics {
  readonly runId: string;
  readonly tag: number;
  /** Row `n` takes slot `n` of this range. */
  readonly range: SlotRange;
  /** Patient ids (not names) the rows are for, row `n` for `patientIds[n % length]`. */
  readonly patientIds: readonly string[];
  /** `booked_by` of every row (the admin's principal in the service's rows; any text here). */
  readonly bookedBy: string;
}

/** The columns of a booking row as CreateConsultation's first INSERT writes them (consultation-repository.ts). */
const columns = [
  "id",
  "patient_id",
  "doctor_id",
  "slot_id",
  "mode",
  "reason_sealed",
  "state",
  "start_time",
  "end_time",
  "doctor_display_name",
  "price_amount_minor",
  "price_currency",
  "booked_by",
  "booked_by_role",
  "hold_id",
  "reschedule_count",
  "create_request_id",
  "create_fingerprint",
  "booked_at",
  "version",
  "created_at",
  "updated_at",
];

/**
 * Child process: the floor for CreateConsultation. Raw `pg` through a pool as large
 * as the service's, `concurrency` INSERTs in flight, each one row of the shape the
 * service stores for a booking (same table, constraints and indexes, including the
 * partial unique index on doctor and slot): row `n` takes slot `n` of its range, so
 * no two rows compete for a slot. No HTTP, no protobuf, no Doctor Service, no audit,
 * no notification: one statement per booking.
 */
function bookingInserts(options: ConsultationPgLoadOptions, pool: pg.Pool) {
  if (options.patientIds.length === 0) throw new Error("no patients to insert consultations for");
  const slots = new SlotSequence(options.range);
  const sql =
    `insert into "consultations" (${columns.map((name) => `"${name}"`).join(", ")}) ` +
    `values (${columns.map((_, i) => `$${i + 1}`).join(", ")})`;
  // As long as the service's sealed reason (AES-256-GCM: nonce, tag, text; base64url), without the encryption.
  const sealedReason = `v1.${randomBytes(12 + 16 + Buffer.byteLength(benchReason)).toString("base64url")}`;
  const insert = async (n: number) => {
    // Throws past the range (before anything is sent), which stops the load: a slot is never reused.
    const slot = slots.slot(n);
    const now = new Date();
    const stamp = now.toISOString();
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([slot.doctorId, slot.slotId, "video", benchReason]))
      .digest("hex");
    const values = [
      uuidV7(now.getTime()),
      options.patientIds[n % options.patientIds.length],
      slot.doctorId,
      slot.slotId,
      "video",
      sealedReason,
      "requested",
      new Date(slot.startMs).toISOString(),
      new Date(slot.endMs).toISOString(),
      slot.doctorDisplayName,
      slot.price.amountMinor,
      slot.price.currency,
      options.bookedBy,
      "admin",
      `hold-${n}`,
      0,
      benchRequestId(options.runId, options.tag, n),
      fingerprint,
      stamp,
      1,
      stamp,
      stamp,
    ];
    const result = await pool.query(sql, values);
    return result.rowCount === 1;
  };
  // A synchronous throw (range run out) escapes runClosedLoop's per-request catch and fails the child.
  return (n: number) => {
    slots.slot(n);
    return insert(n);
  };
}

runPgDriver(bookingInserts).catch(failChild);
