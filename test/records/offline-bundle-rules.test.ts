import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  Condition_ClinicalStatus,
  Prescription_Status,
  type Record as RecordProto,
  RecordSchema,
} from "../../gen/telemed/patient/v1/record_pb.js";
import { isCurrent, selectCritical } from "../../src/records/offline-bundle-rules.ts";
import { decodeCursor, encodeCursor } from "../../src/records/record-feed.ts";

const now = new Date("2026-11-29T12:00:00Z");
const day = 86_400_000;

function rx(fields: { status?: Prescription_Status; durationDays?: number; daysAgo?: number; start?: Date }) {
  const start = fields.start;
  return create(RecordSchema, {
    name: `patients/p/records/${Math.random()}`,
    effectiveTime: timestampFromMs(now.getTime() - (fields.daysAgo ?? 0) * day),
    details: {
      case: "prescription",
      value: {
        medication: { display: "Metformin" },
        status: fields.status ?? Prescription_Status.UNSPECIFIED,
        durationDays: fields.durationDays ?? 0,
        startDate:
          start === undefined
            ? undefined
            : { year: start.getUTCFullYear(), month: start.getUTCMonth() + 1, day: start.getUTCDate() },
      },
    },
  });
}

describe("offline bundle selection (TST-PT007-1)", () => {
  it("counts a prescription as current while active and within its course", () => {
    expect(isCurrent(rx({}), now)).toBe(true);
    expect(isCurrent(rx({ durationDays: 5, daysAgo: 3 }), now)).toBe(true);
    expect(isCurrent(rx({ durationDays: 5, daysAgo: 10 }), now)).toBe(false);
    expect(isCurrent(rx({ durationDays: 5, daysAgo: 0, start: new Date(now.getTime() - 30 * day) }), now)).toBe(false);
    expect(isCurrent(rx({ status: Prescription_Status.ACTIVE, durationDays: 0, daysAgo: 900 }), now)).toBe(true);
    expect(isCurrent(rx({ status: Prescription_Status.STOPPED }), now)).toBe(false);
    expect(isCurrent(rx({ status: Prescription_Status.COMPLETED }), now)).toBe(false);
  });

  it("keeps active allergies and conditions and the newest blood group", () => {
    const records: RecordProto[] = [
      create(RecordSchema, { details: { case: "bloodGroup", value: { abo: 4, rh: 2 } } }),
      create(RecordSchema, { details: { case: "bloodGroup", value: { abo: 1, rh: 1 } } }),
      create(RecordSchema, { details: { case: "allergy", value: { substance: { display: "Latex" }, active: false } } }),
      create(RecordSchema, { details: { case: "allergy", value: { substance: { display: "Nuts" }, active: true } } }),
      create(RecordSchema, {
        details: { case: "condition", value: { code: { display: "Asthma" } } },
      }),
      create(RecordSchema, {
        details: {
          case: "condition",
          value: { code: { display: "Flu" }, clinicalStatus: Condition_ClinicalStatus.RESOLVED },
        },
      }),
      create(RecordSchema, { details: { case: "patientNote", value: { text: "hi" } } }),
    ];
    const picked = selectCritical(records, now);
    expect(picked.bloodGroup).toMatchObject({ abo: 4, rh: 2 });
    expect(picked.allergies.map((r) => r.details.value)).toEqual([expect.objectContaining({ active: true })]);
    expect(picked.conditions).toHaveLength(1);
    expect(picked.currentMedications).toEqual([]);
  });
});

describe("change feed cursor", () => {
  const patient = "01a22591-7fb8-75ab-9d58-dee441f12378";
  it("round-trips and is bound to its patient", () => {
    expect(decodeCursor(patient, encodeCursor(patient, 42))).toBe(42);
    expect(decodeCursor(patient, "")).toBe(0);
    expect(() => decodeCursor("01a22591-7fb8-75ab-9d58-dee441f12379", encodeCursor(patient, 42))).toThrow();
    expect(() => decodeCursor(patient, `${encodeCursor(patient, 42)}A`)).toThrow();
    expect(() => decodeCursor(patient, Buffer.from(`rf1:${patient}:01`).toString("base64url"))).toThrow();
  });
});
