import { describe, expect, it } from "vitest";
import {
  addDays,
  type BookedConsultation,
  civilDateOf,
  daysBetween,
  deriveInsights,
  type PatientFacts,
  type PrescriptionFact,
  type ResultFact,
  ruleIds,
  type SummaryFact,
} from "../../src/insights/insight-rules.ts";

const now = new Date("2027-03-10T09:00:00Z");
const today = civilDateOf(now);
const settings = { horizonDays: 7, abnormalLookbackDays: 180 };
const day = 86_400_000;

function summary(overrides: Partial<SummaryFact> = {}): SummaryFact {
  return {
    recordId: "summary-1",
    recordedAt: new Date(now.getTime() - 20 * day),
    doctorId: "asha-rao",
    doctorName: "Dr. Asha Rao",
    consultationStart: new Date("2027-02-18T10:00:00Z"),
    followUpDate: addDays(today, 3),
    ...overrides,
  };
}

function prescription(overrides: Partial<PrescriptionFact> = {}): PrescriptionFact {
  return {
    recordId: "rx-1",
    medication: "Amoxicillin",
    startDate: addDays(today, -2),
    durationDays: 6,
    active: true,
    prescriber: "doctors/asha-rao",
    ...overrides,
  };
}

function result(overrides: Partial<ResultFact> = {}): ResultFact {
  return {
    recordId: "lab-1",
    test: "Potassium",
    interpretation: "abnormal",
    effectiveTime: new Date(now.getTime() - 2 * day),
    recordedAt: new Date(now.getTime() - 2 * day),
    orderedBy: "doctors/vikram-iyer",
    ...overrides,
  };
}

function facts(overrides: Partial<PatientFacts> = {}): PatientFacts {
  return { summaries: [], prescriptions: [], results: [], consultations: [], ...overrides };
}

const bookedWith = (doctorId: string, bookedAt: Date): BookedConsultation => ({ doctorId, bookedAt });

describe("follow-up due (follow_up_due.v1)", () => {
  it("fires when the follow-up date is within the horizon, explaining who asked and when", () => {
    const [insight] = deriveInsights(facts({ summaries: [summary()] }), now, settings);
    expect(insight).toEqual({
      kind: "follow_up_due",
      ruleId: ruleIds.follow_up_due,
      sourceRecordId: "summary-1",
      dueDate: { year: 2027, month: 3, day: 13 },
      title: "Follow-up due",
      explanation:
        "Dr. Asha Rao asked to see you again by 13 March 2027 (consultation of 18 February 2027); no follow-up with them is booked yet.",
      action: "book_consultation",
      actionResource: "doctors/asha-rao",
    });
  });

  it("keeps firing once the date has passed, and not before the horizon", () => {
    expect(
      deriveInsights(facts({ summaries: [summary({ followUpDate: addDays(today, -5) })] }), now, settings),
    ).toHaveLength(1);
    expect(
      deriveInsights(facts({ summaries: [summary({ followUpDate: addDays(today, 7) })] }), now, settings),
    ).toHaveLength(1);
    expect(deriveInsights(facts({ summaries: [summary({ followUpDate: addDays(today, 8) })] }), now, settings)).toEqual(
      [],
    );
    expect(deriveInsights(facts({ summaries: [summary({ followUpDate: undefined })] }), now, settings)).toEqual([]);
  });

  it("is resolved by a consultation booked with that doctor after the summary, not with another doctor or before", () => {
    const s = summary();
    const after = new Date(s.recordedAt.getTime() + 1000);
    const before = new Date(s.recordedAt.getTime() - 1000);
    expect(
      deriveInsights(facts({ summaries: [s], consultations: [bookedWith("asha-rao", after)] }), now, settings),
    ).toEqual([]);
    expect(
      deriveInsights(
        facts({ summaries: [s], consultations: [bookedWith("vikram-iyer", after), bookedWith("asha-rao", before)] }),
        now,
        settings,
      ),
    ).toHaveLength(1);
  });
});

describe("prescription ending (prescription_ending.v1)", () => {
  it("fires for an active prescription whose last day is within the horizon", () => {
    const [insight] = deriveInsights(facts({ prescriptions: [prescription()] }), now, settings);
    expect(insight).toMatchObject({
      kind: "prescription_ending",
      ruleId: "prescription_ending.v1",
      sourceRecordId: "rx-1",
      dueDate: { year: 2027, month: 3, day: 13 },
      action: "renew_prescription",
      actionResource: "doctors/asha-rao",
      explanation: "Your prescription of Amoxicillin (6 days from 8 March 2027) ends on 13 March 2027, in 3 days.",
    });
    expect(daysBetween(today, insight?.dueDate ?? today)).toBe(3);
  });

  it("does not fire when ongoing, stopped, already ended, or ending beyond the horizon", () => {
    const none = (p: Partial<PrescriptionFact>) =>
      deriveInsights(facts({ prescriptions: [prescription(p)] }), now, settings);
    expect(none({ durationDays: 0 })).toEqual([]);
    expect(none({ active: false })).toEqual([]);
    expect(none({ startDate: addDays(today, -10), durationDays: 5 })).toEqual([]);
    expect(none({ startDate: today, durationDays: 30 })).toEqual([]);
    // The last day itself still counts ("today").
    expect(none({ startDate: addDays(today, -4), durationDays: 5 })[0]?.explanation).toMatch(/today\.$/);
  });
});

describe("abnormal result without follow-up (abnormal_result_without_follow_up.v1)", () => {
  it("fires for an abnormal or critical result with nothing booked since, naming the ordering doctor", () => {
    const [abnormal] = deriveInsights(facts({ results: [result()] }), now, settings);
    expect(abnormal).toMatchObject({
      kind: "abnormal_result_without_follow_up",
      sourceRecordId: "lab-1",
      dueDate: { year: 2027, month: 3, day: 8 },
      title: "Abnormal result to discuss",
      action: "book_consultation",
      actionResource: "doctors/vikram-iyer",
    });
    expect(abnormal?.explanation).toBe(
      "Potassium of 8 March 2027 was marked abnormal, and no consultation with the doctor who ordered it has been booked since.",
    );
    expect(deriveInsights(facts({ results: [result({ interpretation: "critical" })] }), now, settings)[0]?.title).toBe(
      "Critical result to discuss",
    );
  });

  it("does not fire for a normal result, an old one, or one followed by a booking", () => {
    const r = result();
    const after = new Date(r.recordedAt.getTime() + 1000);
    expect(deriveInsights(facts({ results: [result({ interpretation: "other" })] }), now, settings)).toEqual([]);
    expect(
      deriveInsights(
        facts({ results: [result({ effectiveTime: new Date(now.getTime() - 181 * day) })] }),
        now,
        settings,
      ),
    ).toEqual([]);
    expect(
      deriveInsights(facts({ results: [r], consultations: [bookedWith("vikram-iyer", after)] }), now, settings),
    ).toEqual([]);
    // Another doctor does not follow up a result Dr. Iyer ordered; without an ordering doctor, anyone does.
    expect(
      deriveInsights(facts({ results: [r], consultations: [bookedWith("asha-rao", after)] }), now, settings),
    ).toHaveLength(1);
    expect(
      deriveInsights(
        facts({ results: [result({ orderedBy: "" })], consultations: [bookedWith("asha-rao", after)] }),
        now,
        settings,
      ),
    ).toEqual([]);
  });
});

it("orders insights earliest due date first", () => {
  const derived = deriveInsights(
    facts({ summaries: [summary()], prescriptions: [prescription({ durationDays: 4 })], results: [result()] }),
    now,
    settings,
  );
  expect(derived.map((i) => i.kind)).toEqual([
    "abnormal_result_without_follow_up",
    "prescription_ending",
    "follow_up_due",
  ]);
});
