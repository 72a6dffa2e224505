import type { EntityManager } from "@mikro-orm/postgresql";
import type { InsightStateName } from "./insight-entity.ts";
import type { InsightAction, InsightKind } from "./insight-rules.ts";

/** One row of `health_insights`, as the driver returns it. */
export interface InsightRow {
  readonly id: string;
  readonly patient_id: string;
  readonly kind: InsightKind;
  readonly rule_id: string;
  readonly source_record_id: string;
  readonly state: InsightStateName;
  readonly title: string;
  readonly explanation_sealed: string;
  /** The row's data key, wrapped by the key ring (the explanation is sealed under it). */
  readonly data_key_wrapped: string;
  readonly due_date: string | Date;
  /** `due_date` as `YYYY-MM-DD` text (a JS Date of a `date` column would depend on the time zone). */
  readonly due_day: string;
  readonly suggested_action: InsightAction;
  readonly action_resource: string;
  readonly version: number;
  readonly created_at: string | Date;
  readonly updated_at: string | Date;
  readonly closed_at: string | Date | null;
}

/** The content of an insight a derivation writes. */
export interface InsightContent {
  readonly title: string;
  readonly explanationSealed: string;
  /** `YYYY-MM-DD`. */
  readonly dueDate: string;
  readonly action: InsightAction;
  readonly actionResource: string;
}

const columns = `*, "due_date"::text as "due_day"`;

/** SQL of `health_insights`; every query is scoped to one patient. */
export class InsightStore {
  /** Every insight of the patient, whatever its state (a derivation compares them with what the rules say). */
  async all(em: EntityManager, patientId: string): Promise<InsightRow[]> {
    return em.execute<InsightRow[]>(
      `select ${columns} from "health_insights" where "patient_id" = ?`,
      [patientId],
      "all",
    );
  }

  /** Inserts a new ACTIVE insight; false when another derivation inserted the same rule and record first. */
  async insert(
    em: EntityManager,
    row: { id: string; patientId: string; kind: InsightKind; ruleId: string; sourceRecordId: string; now: Date },
    content: InsightContent,
    key: { readonly wrapped: string; readonly keyId: string },
  ): Promise<boolean> {
    const stamp = row.now.toISOString();
    const inserted = await em.execute<{ id: string }[]>(
      `insert into "health_insights" ("id", "patient_id", "kind", "rule_id", "source_record_id", "state", "title", ` +
        `"explanation_sealed", "data_key_wrapped", "data_key_id", "due_date", "suggested_action", "action_resource", ` +
        `"version", "created_at", "updated_at") values (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) ` +
        `on conflict on constraint "health_insights_rule_source_unique" do nothing returning "id"`,
      [
        row.id,
        row.patientId,
        row.kind,
        row.ruleId,
        row.sourceRecordId,
        content.title,
        content.explanationSealed,
        key.wrapped,
        key.keyId,
        content.dueDate,
        content.action,
        content.actionResource,
        stamp,
        stamp,
      ],
      "all",
    );
    return inserted.length === 1;
  }

  /** Makes a not-dismissed insight ACTIVE with this content (unchanged rows are left alone). */
  async activate(em: EntityManager, id: string, content: InsightContent, now: Date): Promise<void> {
    await em.execute(
      `update "health_insights" set "state" = 'active', "closed_at" = null, "title" = ?, "explanation_sealed" = ?, ` +
        `"due_date" = ?, "suggested_action" = ?, "action_resource" = ?, "version" = "version" + 1, "updated_at" = ? ` +
        `where "id" = ? and "state" <> 'dismissed'`,
      [
        content.title,
        content.explanationSealed,
        content.dueDate,
        content.action,
        content.actionResource,
        now.toISOString(),
        id,
      ],
      "run",
    );
  }

  /** ACTIVE or DISMISSED to RESOLVED or DISMISSED: closes an insight if it is still ACTIVE. */
  async close(em: EntityManager, id: string, state: "resolved" | "dismissed", now: Date): Promise<void> {
    await em.execute(
      `update "health_insights" set "state" = ?, "closed_at" = ?, "version" = "version" + 1, "updated_at" = ? ` +
        `where "id" = ? and "state" = 'active'`,
      [state, now.toISOString(), now.toISOString(), id],
      "run",
    );
  }

  /** One insight of the patient, or undefined; `lock` holds it until the transaction ends. */
  async get(em: EntityManager, patientId: string, id: string, lock = false): Promise<InsightRow | undefined> {
    return em.execute<InsightRow>(
      `select ${columns} from "health_insights" where "id" = ? and "patient_id" = ?${lock ? " for update" : ""}`,
      [id, patientId],
      "get",
    );
  }

  /** A page of the patient's insights in these states, earliest due date first (ties by id). */
  async page(
    em: EntityManager,
    query: {
      patientId: string;
      states: readonly InsightStateName[];
      after: { dueDate: string; id: string } | undefined;
      limit: number;
    },
  ): Promise<InsightRow[]> {
    const after = query.after === undefined ? "" : ` and ("due_date", "id") > (?::date, ?)`;
    const params: (string | number | readonly string[])[] = [query.patientId, query.states];
    if (query.after !== undefined) params.push(query.after.dueDate, query.after.id);
    params.push(query.limit);
    return em.execute<InsightRow[]>(
      `select ${columns} from "health_insights" where "patient_id" = ? and "state" in (?)${after} ` +
        `order by "due_date", "id" limit ?`,
      params,
      "all",
    );
  }
}
