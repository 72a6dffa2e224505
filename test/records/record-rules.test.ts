import { describe, expect, it } from "vitest";
import {
  consultationIdsOf,
  recordIdsOf,
  requireMaskFitsKind,
  requireMayAmend,
  requireWritableKind,
  sourceOf,
  type Writer,
} from "../../src/records/record-rules.ts";
import type { DomainError } from "../../src/shared/domain-errors.ts";

const reasonOf = (run: () => void): string => {
  try {
    run();
  } catch (error) {
    return (error as DomainError).reason;
  }
  return "allowed";
};

const patient: Writer = { role: "patient", principal: "patients/p1", doctorId: undefined };
const doctor: Writer = { role: "doctor", principal: "doctors/a1", doctorId: "asha-rao" };

describe("who writes which records", () => {
  it("keeps patients to notes, clinicians to clinical kinds, and summaries with their consultation", () => {
    expect(reasonOf(() => requireWritableKind("patient", "patient_note"))).toBe("allowed");
    expect(reasonOf(() => requireWritableKind("patient", "prescription"))).toBe("RECORD_KIND_NOT_ALLOWED");
    expect(reasonOf(() => requireWritableKind("doctor", "prescription"))).toBe("allowed");
    expect(reasonOf(() => requireWritableKind("service", "xray_study"))).toBe("allowed");
    expect(reasonOf(() => requireWritableKind("admin", "patient_note"))).toBe("RECORD_KIND_NOT_ALLOWED");
    expect(reasonOf(() => requireWritableKind("doctor", "consultation_summary"))).toBe(
      "SUMMARY_BELONGS_TO_CONSULTATION",
    );
    expect([sourceOf("patient"), sourceOf("doctor"), sourceOf("admin"), sourceOf("service")]).toEqual([
      "patient",
      "clinician",
      "clinician",
      "service",
    ]);
  });

  it("lets a patient amend only notes they wrote, and clinicians only clinical records", () => {
    expect(reasonOf(() => requireMayAmend(patient, { source: "patient", author: "patients/p1" }))).toBe("allowed");
    expect(reasonOf(() => requireMayAmend(patient, { source: "patient", author: "patients/p2" }))).toBe(
      "RECORD_NOT_EDITABLE",
    );
    expect(reasonOf(() => requireMayAmend(patient, { source: "clinician", author: "patients/p1" }))).toBe(
      "RECORD_NOT_EDITABLE",
    );
    expect(reasonOf(() => requireMayAmend(doctor, { source: "service", author: "services/x" }))).toBe("allowed");
    expect(reasonOf(() => requireMayAmend(doctor, { source: "patient", author: "patients/p1" }))).toBe(
      "RECORD_NOT_EDITABLE",
    );
  });

  it("never lets an update mask change the kind", () => {
    expect(reasonOf(() => requireMaskFitsKind(["effective_time", "prescription"], "prescription"))).toBe("allowed");
    expect(reasonOf(() => requireMaskFitsKind(["allergy"], "prescription"))).toBe("INVALID_FIELD");
  });

  it("parses resource names strictly", () => {
    expect(recordIdsOf("patients/p1/records/r1")).toEqual({ patientId: "p1", recordId: "r1" });
    expect(recordIdsOf("patients/p1/records/r1/x")).toBeUndefined();
    expect(consultationIdsOf("patients/p1/consultations/c1")).toEqual({ patientId: "p1", consultationId: "c1" });
    expect(consultationIdsOf("patients/p1/records/c1")).toBeUndefined();
  });
});
