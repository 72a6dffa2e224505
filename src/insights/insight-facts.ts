import type { EntityManager } from "@mikro-orm/postgresql";
import { Prescription_Status, TestResult_Interpretation } from "../../gen/telemed/patient/v1/record_pb.js";
import type { ConsultationSummaries } from "../consultations/consultation-summaries.ts";
import type { Logger } from "../observability/logger.ts";
import type { RecordSealer } from "../records/record-content.ts";
import type { RecordRepository, RecordRow } from "../records/record-repository.ts";
import {
  type BookedConsultation,
  type CivilDate,
  civilDateOf,
  type PatientFacts,
  type PrescriptionFact,
  type ResultFact,
  type SummaryFact,
} from "./insight-rules.ts";

/** The most records of each kind a derivation looks at (the newest ones). */
const recordLimit = 500;

/**
 * Reads what the insight rules look at for one patient, through the records and
 * consultations contexts' own classes (they seal their content; this opens it in
 * memory and keeps none of it). A record that does not open is left out and logged by
 * id only: one damaged row must not stop a patient's other reminders.
 */
export class InsightFacts {
  readonly #records: RecordRepository;
  readonly #sealer: RecordSealer;
  readonly #summaries: ConsultationSummaries;
  readonly #logger: Logger;

  constructor(records: RecordRepository, sealer: RecordSealer, summaries: ConsultationSummaries, logger: Logger) {
    this.#records = records;
    this.#sealer = sealer;
    this.#summaries = summaries;
    this.#logger = logger;
  }

  async of(em: EntityManager, patientId: string): Promise<PatientFacts> {
    const rows = await this.#records.liveOfKinds(em, patientId, ["prescription", "test_result"], recordLimit);
    const prescriptions: PrescriptionFact[] = [];
    const results: ResultFact[] = [];
    for (const row of rows) {
      const fact = this.#factOf(row);
      if (fact?.kind === "prescription") prescriptions.push(fact.fact);
      if (fact?.kind === "result") results.push(fact.fact);
    }
    return {
      prescriptions,
      results,
      summaries: await this.#summaryFacts(em, patientId),
      consultations: await booked(em, patientId),
    };
  }

  #factOf(
    row: RecordRow,
  ): { kind: "prescription"; fact: PrescriptionFact } | { kind: "result"; fact: ResultFact } | undefined {
    let details: ReturnType<RecordSealer["open"]>["details"];
    try {
      details = this.#sealer.open(row).details;
    } catch {
      this.#logger.warn({ recordId: row.id }, "insights skipped a record that does not open");
      return undefined;
    }
    const effective = new Date(row.effective_time);
    if (details.case === "prescription") {
      const p = details.value;
      return {
        kind: "prescription",
        fact: {
          recordId: row.id,
          medication: p.medication?.display || p.medication?.code || "",
          startDate: civilOf(p.startDate) ?? civilDateOf(effective),
          durationDays: p.durationDays,
          active: p.status === Prescription_Status.UNSPECIFIED || p.status === Prescription_Status.ACTIVE,
          prescriber: p.prescriber,
        },
      };
    }
    if (details.case === "testResult") {
      const r = details.value;
      return {
        kind: "result",
        fact: {
          recordId: row.id,
          test: r.test?.display || r.test?.code || "",
          interpretation:
            r.interpretation === TestResult_Interpretation.ABNORMAL
              ? "abnormal"
              : r.interpretation === TestResult_Interpretation.CRITICAL
                ? "critical"
                : "other",
          effectiveTime: effective,
          recordedAt: new Date(row.created_at),
          orderedBy: r.orderedBy,
        },
      };
    }
    return undefined;
  }

  async #summaryFacts(em: EntityManager, patientId: string): Promise<SummaryFact[]> {
    const rows = await em.execute<
      {
        id: string;
        consultation_id: string;
        created_at: string | Date;
        doctor_id: string;
        doctor_display_name: string;
        start_time: string | Date;
      }[]
    >(
      `select s."id", s."consultation_id", s."created_at", c."doctor_id", c."doctor_display_name", c."start_time" ` +
        `from "consultation_summaries" s join "consultations" c on c."id" = s."consultation_id" ` +
        `where s."patient_id" = ? order by s."created_at" desc limit ?`,
      [patientId, recordLimit],
      "all",
    );
    const facts: SummaryFact[] = [];
    for (const row of rows) {
      let followUpDate: CivilDate | undefined;
      try {
        followUpDate = civilOf((await this.#summaries.find(em, row.consultation_id))?.summary.followUpDate);
      } catch {
        this.#logger.warn({ recordId: row.id }, "insights skipped a summary that does not open");
        continue;
      }
      facts.push({
        recordId: row.id,
        recordedAt: new Date(row.created_at),
        doctorId: row.doctor_id,
        doctorName: row.doctor_display_name,
        consultationStart: new Date(row.start_time),
        followUpDate,
      });
    }
    return facts;
  }
}

/** The patient's consultations that were booked and not cancelled. */
async function booked(em: EntityManager, patientId: string): Promise<BookedConsultation[]> {
  const rows = await em.execute<{ doctor_id: string; booked_at: string | Date }[]>(
    `select "doctor_id", "booked_at" from "consultations" where "patient_id" = ? ` +
      `and "state" in ('scheduled', 'ongoing', 'completed')`,
    [patientId],
    "all",
  );
  return rows.map((row) => ({ doctorId: row.doctor_id, bookedAt: new Date(row.booked_at) }));
}

function civilOf(date: { year: number; month: number; day: number } | undefined): CivilDate | undefined {
  if (date === undefined || date.year === 0 || date.month === 0 || date.day === 0) return undefined;
  return { year: date.year, month: date.month, day: date.day };
}
