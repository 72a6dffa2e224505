import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Insight,
  Insight_Kind,
  Insight_State,
  Insight_SuggestedAction,
  InsightSchema,
} from "../../gen/telemed/patient/v1/insight_pb.js";
import type { InsightStateName } from "./insight-entity.ts";
import type { InsightAction, InsightKind } from "./insight-rules.ts";
import type { InsightRow } from "./insight-store.ts";

const kindEnum: Readonly<Record<InsightKind, Insight_Kind>> = {
  follow_up_due: Insight_Kind.FOLLOW_UP_DUE,
  prescription_ending: Insight_Kind.PRESCRIPTION_ENDING,
  abnormal_result_without_follow_up: Insight_Kind.ABNORMAL_RESULT_WITHOUT_FOLLOW_UP,
};

const stateEnum: Readonly<Record<InsightStateName, Insight_State>> = {
  active: Insight_State.ACTIVE,
  dismissed: Insight_State.DISMISSED,
  resolved: Insight_State.RESOLVED,
};

const actionEnum: Readonly<Record<InsightAction, Insight_SuggestedAction>> = {
  book_consultation: Insight_SuggestedAction.BOOK_CONSULTATION,
  renew_prescription: Insight_SuggestedAction.RENEW_PRESCRIPTION,
  contact_doctor: Insight_SuggestedAction.CONTACT_DOCTOR,
};

/** The stored states a ListInsights `states` filter selects; ACTIVE only when it is empty. */
export function statesOf(states: readonly Insight_State[]): InsightStateName[] {
  if (states.length === 0) return ["active"];
  return (Object.keys(stateEnum) as InsightStateName[]).filter((name) => states.includes(stateEnum[name]));
}

/** `patients/{p}/insights/{i}`. */
export function insightName(patientId: string, insightId: string): string {
  return `patients/${patientId}/insights/${insightId}`;
}

/** The ids in an insight name, or undefined when it is not one. */
export function insightIdsOf(name: string): { patientId: string; insightId: string } | undefined {
  const match = /^patients\/([^/]+)\/insights\/([^/]+)$/.exec(name);
  return match === null ? undefined : { patientId: match[1] as string, insightId: match[2] as string };
}

/** A stored insight as the contract's Insight; `explanation` is the opened explanation. */
export function insightToProto(row: InsightRow, explanation: string): Insight {
  const [year, month, day] = row.due_day.split("-").map(Number) as [number, number, number];
  return create(InsightSchema, {
    name: insightName(row.patient_id, row.id),
    kind: kindEnum[row.kind],
    state: stateEnum[row.state],
    title: row.title,
    explanation,
    sourceRecord: `patients/${row.patient_id}/records/${row.source_record_id}`,
    ruleId: row.rule_id,
    dueDate: { year, month, day },
    suggestedAction: actionEnum[row.suggested_action],
    actionResource: row.action_resource,
    createTime: timestampFromMs(new Date(row.created_at).getTime()),
    closeTime: row.closed_at === null ? undefined : timestampFromMs(new Date(row.closed_at).getTime()),
    etag: etagOf(row),
  });
}

/** The opaque version of an insight (AIP-154). */
export function etagOf(row: InsightRow): string {
  return `v${row.version}`;
}
