import { defineEntity, p } from "@mikro-orm/core";
import { insightActions, insightKinds } from "./insight-rules.ts";

/** Insight states as stored (the lower-case short names of Insight.State). */
export const insightStates = ["active", "dismissed", "resolved"] as const;
export type InsightStateName = (typeof insightStates)[number];

/**
 * `health_insights`: the insights derived from a patient's records, one per rule and
 * source record (the unique key makes deriving idempotent across rescans and replicas,
 * and keeps a dismissed insight dismissed). Rows are read and written with SQL
 * (insight-store.ts); Migration20261129120000_create_health_insights builds the table
 * (test/db/schema-drift.test.ts).
 *
 * The explanation names medicines, tests and doctors: health data, sealed with the
 * secret box and bound to the row id. Title, kind, dates and the doctor to book are in
 * clear (they order and filter the list and carry no clinical detail of their own).
 */
export const HealthInsightEntity = defineEntity({
  name: "HealthInsight",
  tableName: "health_insights",
  properties: {
    id: p.uuid().primary(),
    patientId: p.uuid(),
    kind: p.enum(insightKinds),
    ruleId: p.string().length(64),
    sourceRecordId: p.uuid(),
    state: p.enum(insightStates),
    title: p.string().length(100),
    explanationSealed: p.text(),
    /** The row's data key, wrapped by the key ring; the explanation is sealed under it. */
    dataKeyWrapped: p.text(),
    dataKeyId: p.string().length(32).index("health_insights_data_key_idx"),
    dueDate: p.date(),
    suggestedAction: p.enum(insightActions),
    actionResource: p.string().length(200),
    version: p.integer(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    closedAt: p.datetime(3).nullable(),
  },
  uniques: [{ name: "health_insights_rule_source_unique", properties: ["patientId", "ruleId", "sourceRecordId"] }],
  indexes: [{ name: "health_insights_patient_due_idx", properties: ["patientId", "state", "dueDate", "id"] }],
});

/** The insights context's entities (registered in src/db/entities.ts). */
export const insightEntities = [HealthInsightEntity] as const;
