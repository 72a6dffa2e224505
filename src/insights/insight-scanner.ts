import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "../observability/logger.ts";
import type { InsightDerivation } from "./insight-derivation.ts";

const batchSize = 200;

/**
 * Derives every patient's insights again every `intervalMs`, so a reminder that falls
 * due (a date coming within the horizon) is stored and notified without the patient
 * opening the app. It walks the patients who have a prescription, a test result or a
 * consultation summary, in id order, a batch at a time. Several replicas may scan at
 * once: the derivation is idempotent (insight-derivation.ts), so they only repeat work.
 * `scanOnce` is what the timer runs, and what tests may call after moving the clock.
 */
export class InsightScanner {
  readonly #em: () => EntityManager;
  readonly #derivation: InsightDerivation;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(em: () => EntityManager, derivation: InsightDerivation, logger: Logger, intervalMs: number) {
    this.#em = em;
    this.#derivation = derivation;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** Starts scanning every `intervalMs` (not at all when it is 0). */
  start(): void {
    if (this.#intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.scanOnce(), this.#intervalMs);
    this.#timer.unref();
  }

  /** One scan; a scan already running is waited for instead of overlapped. */
  scanOnce(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#running ??= this.#scan()
      .catch((error: unknown) =>
        this.#logger.warn(
          { err: { type: error instanceof Error ? error.constructor.name : typeof error } },
          "insight scan failed",
        ),
      )
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running;
  }

  async #scan(): Promise<void> {
    let after = "00000000-0000-0000-0000-000000000000";
    while (!this.#closed) {
      const rows = await this.#em().execute<{ patient_id: string }[]>(
        `select "patient_id" from (select "patient_id" from "medical_records" where "kind" in ('prescription', 'test_result') ` +
          `and "deleted_at" is null union select "patient_id" from "consultation_summaries") p ` +
          `where "patient_id" > ? order by "patient_id" limit ?`,
        [after, batchSize],
        "all",
      );
      for (const { patient_id } of rows) {
        if (this.#closed) return;
        // One patient's failure (a damaged row, a lost race) does not stop the others.
        await this.#derivation
          .refresh(patient_id)
          .catch((error: unknown) =>
            this.#logger.warn(
              { patientId: patient_id, err: { type: error instanceof Error ? error.constructor.name : typeof error } },
              "insight derivation failed",
            ),
          );
      }
      const last = rows.at(-1);
      if (rows.length < batchSize || last === undefined) return;
      after = last.patient_id;
    }
  }
}
