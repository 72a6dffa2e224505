import type { EntityManager } from "@mikro-orm/postgresql";
import { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";
import type { AnnounceAfterCommit, NotificationDraft, Notifier } from "../notifications/notifier.ts";
import type { Clock } from "../shared/clock.ts";
import type { DataKeyCache } from "../shared/crypto/data-key-cache.ts";
import type { DataKey, EnvelopeCipher } from "../shared/crypto/envelope.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import type { InsightFacts } from "./insight-facts.ts";
import { type CivilDate, type DerivedInsight, deriveInsights, type RuleSettings } from "./insight-rules.ts";
import type { InsightContent, InsightRow, InsightStore } from "./insight-store.ts";

/** What deriving needs. */
export interface InsightDerivationDeps {
  readonly em: () => EntityManager;
  readonly store: InsightStore;
  readonly facts: InsightFacts;
  /** The key ring and the shared cache of opened data keys: explanations are sealed under each row's own key. */
  readonly keys: { readonly cipher: EnvelopeCipher; readonly dataKeys: DataKeyCache };
  readonly notifier: Notifier;
  readonly clock: Clock;
  readonly settings: RuleSettings;
}

/**
 * Brings a patient's stored insights in line with what the rules say now: a new
 * insight is inserted ACTIVE with its HEALTH_ALERTS notification in one transaction
 * (the unique rule+record key lets only one of two concurrent derivations insert it,
 * and the notification's dedupe key is the insight's, so it goes out once); one whose
 * condition no longer holds is RESOLVED; one that holds again is ACTIVE again (without
 * a second notification); a DISMISSED one is never touched.
 */
export class InsightDerivation {
  readonly #d: InsightDerivationDeps;

  constructor(deps: InsightDerivationDeps) {
    this.#d = deps;
  }

  async refresh(patientId: string): Promise<void> {
    const { em, store, facts, clock, settings } = this.#d;
    const now = clock.now();
    const derived = deriveInsights(await facts.of(em(), patientId), now, settings);
    const announcements: AnnounceAfterCommit[] = [];
    await em().transactional(async (tx) => {
      const stored = new Map(
        (await store.all(tx, patientId)).map((row) => [keyOf(row.rule_id, row.source_record_id), row]),
      );
      const wanted = new Set<string>();
      for (const insight of derived) {
        const key = keyOf(insight.ruleId, insight.sourceRecordId);
        wanted.add(key);
        const existing = stored.get(key);
        if (existing === undefined) {
          const id = uuidV7(now.getTime());
          const key = this.#d.keys.cipher.newDataKey({ table: insightTable, row: id });
          const row = {
            id,
            patientId,
            kind: insight.kind,
            ruleId: insight.ruleId,
            sourceRecordId: insight.sourceRecordId,
            now,
          };
          if (await store.insert(tx, row, this.#content(key, insight), key)) {
            this.#d.keys.dataKeys.remember(key);
            announcements.push(await this.#d.notifier.recordWithin(tx, [notificationOf(patientId, id)]));
          }
        } else if (existing.state !== "dismissed" && this.#changed(existing, insight)) {
          await store.activate(tx, existing.id, this.#content(this.#key(existing), insight), now);
        }
      }
      for (const [key, row] of stored) {
        if (row.state === "active" && !wanted.has(key)) await store.close(tx, row.id, "resolved", now);
      }
    });
    for (const announce of announcements) announce();
  }

  /** The explanation of a stored insight, opened. */
  explanationOf(row: InsightRow): string {
    return this.#key(row).openText(explanationColumn, row.explanation_sealed);
  }

  #key(row: InsightRow): DataKey {
    return this.#d.keys.dataKeys.open(row.data_key_wrapped, { table: insightTable, row: row.id });
  }

  #content(key: DataKey, insight: DerivedInsight): InsightContent {
    return {
      title: insight.title,
      explanationSealed: key.sealText(explanationColumn, insight.explanation),
      dueDate: dateText(insight.dueDate),
      action: insight.action,
      actionResource: insight.actionResource,
    };
  }

  #changed(row: InsightRow, insight: DerivedInsight): boolean {
    return (
      row.state !== "active" ||
      row.title !== insight.title ||
      row.due_day !== dateText(insight.dueDate) ||
      row.suggested_action !== insight.action ||
      row.action_resource !== insight.actionResource ||
      this.explanationOf(row) !== insight.explanation
    );
  }
}

/** The patient's notification of a new insight: no clinical detail (it may travel by SMS). */
function notificationOf(patientId: string, insightId: string): NotificationDraft {
  return {
    recipientPatientId: patientId,
    category: NotificationCategory.HEALTH_ALERTS,
    priority: NotificationPriority.NORMAL,
    title: "New health reminder",
    body: "There is a new reminder about your health in the app.",
    subjectResource: `patients/${patientId}/insights/${insightId}`,
    dedupeKey: `insight:${insightId}`,
  };
}

function keyOf(ruleId: string, sourceRecordId: string): string {
  return `${ruleId}|${sourceRecordId}`;
}

/** Where explanations are sealed: their table and column (envelope associated data). */
export const insightTable = "health_insights";
export const explanationColumn = "explanation_sealed";

/** The secret-box context explanations were sealed with before issue #6 (the migration's data step opens them). */
export function legacyInsightContext(insightId: string): string {
  return `health-insight:${insightId}`;
}

/** `YYYY-MM-DD`. */
export function dateText(date: CivilDate): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.year, 4)}-${pad(date.month)}-${pad(date.day)}`;
}
