import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Record as RecordProto, RecordSchema } from "../gen/telemed/patient/v1/record_pb.js";

/**
 * The record every records target writes: a prescription with the fields a real one
 * has, so the sealed content (and what encryption costs) is of a realistic size.
 */
export function benchPrescription(): RecordProto {
  return create(RecordSchema, {
    effectiveTime: timestampFromDate(new Date("2026-01-15T09:30:00Z")),
    details: {
      case: "prescription",
      value: {
        medication: { system: "http://www.whocc.no/atc", code: "C09AA05", display: "Ramipril 5 mg tablet" },
        dose: { value: "5", unit: "mg" },
        frequency: "once daily in the morning",
        route: "oral",
        startDate: { year: 2026, month: 1, day: 15 },
        durationDays: 90,
        instructions: "Check blood pressure weekly; report dizziness or a dry cough to your doctor.",
      },
    },
  });
}
