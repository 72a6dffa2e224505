import { InsightService } from "../../gen/telemed/patient/v1/insight_service_pb.js";
import { ConsultationSummaries } from "../consultations/consultation-summaries.ts";
import { InsightDerivation } from "../insights/insight-derivation.ts";
import { InsightFacts } from "../insights/insight-facts.ts";
import { insightService } from "../insights/insight-handlers.ts";
import { InsightScanner } from "../insights/insight-scanner.ts";
import { InsightStore } from "../insights/insight-store.ts";
import { Insights } from "../insights/insights.ts";
import { RecordSealer } from "../records/record-content.ts";
import { RecordRepository } from "../records/record-repository.ts";
import type { AppContext, StartedPart } from "./app-context.ts";
import type { NotificationsPart } from "./notifications-part.ts";

/** The health insights context, started. */
export interface InsightsPart extends StartedPart {
  /** Derives every patient's insights once (what the timer runs; tests call it after moving the clock). */
  scanOnce(): Promise<void>;
}

/**
 * Starts health insights (issue #6, secondary requirement 3): reminders derived from
 * the records (insight-rules.ts), stored so a dismissal sticks, notified once in the
 * HEALTH_ALERTS category, derived again on every ListInsights and by a periodic scan
 * (INSIGHT_SCAN_INTERVAL_MS). Records and summaries are read through their contexts'
 * classes, opened with the app's field encryption (`context.crypto`).
 */
export async function startInsights(context: AppContext, notifications: NotificationsPart): Promise<InsightsPart> {
  const { config, logger, orm, clock } = context;
  const settings = config.insights;
  const em = () => orm.em.fork();
  const log = logger.child({ component: "insights" });
  const store = new InsightStore();
  const derivation = new InsightDerivation({
    em,
    store,
    facts: new InsightFacts(
      new RecordRepository(),
      new RecordSealer(context.crypto, log),
      new ConsultationSummaries(context.crypto),
      log,
    ),
    keys: context.crypto,
    notifier: notifications.notifier,
    clock,
    settings: { horizonDays: settings.horizonDays, abnormalLookbackDays: settings.abnormalLookbackDays },
  });
  const scanner = new InsightScanner(em, derivation, log, settings.scanIntervalMs);
  scanner.start();
  return {
    registrations: [{ service: InsightService, impl: insightService(new Insights(em, store, derivation, clock)) }],
    scanOnce: () => scanner.scanOnce(),
    async close() {
      await scanner.close();
    },
  };
}
