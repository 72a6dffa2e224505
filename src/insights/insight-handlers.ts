import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { InsightService } from "../../gen/telemed/patient/v1/insight_service_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import { actingForKey } from "../rpc/context-keys.ts";
import { notFound } from "../shared/domain-errors.ts";
import { insightIdsOf } from "./insight-mapping.ts";
import type { Insights } from "./insights.ts";

/**
 * InsightService handlers: protobuf in, protobuf out. The pipeline decided who may
 * call and for which patient (the policy in the contract: the patient, a guardian with
 * the VIEW_RECORDS grant, an admin), validated the request and audits the reads.
 */
export function insightService(insights: Insights): Partial<ServiceImpl<typeof InsightService>> {
  const patientOf = (context: HandlerContext): string => {
    const actingFor = context.values.get(actingForKey);
    if (actingFor === undefined) throw notFound("Patient");
    return actingFor.patientId;
  };
  /** An insight of the patient the pipeline admitted; another patient's is NOT_FOUND like a missing one. */
  const insightIdOf = (name: string, patientId: string): string => {
    const ids = insightIdsOf(name);
    if (ids === undefined || ids.patientId !== patientId) throw notFound("Insight");
    return ids.insightId;
  };

  return {
    async listInsights(request, context) {
      const page = await insights.list(patientOf(context), request);
      return { insights: page.insights, nextPageToken: page.next };
    },

    async getInsight(request, context) {
      const patientId = patientOf(context);
      return { insight: await insights.get(patientId, insightIdOf(request.name, patientId)) };
    },

    async dismissInsight(request, context) {
      const patientId = patientOf(context);
      const insight = await insights.dismiss(
        patientId,
        insightIdOf(request.name, patientId),
        request.etag,
        context.values.get(callAuditKey),
      );
      return { insight };
    },
  };
}
