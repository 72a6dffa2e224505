import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { EmergencyService } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import { AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { EmergencySchema } from "../../gen/telemed/patient/v1/emergency_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import type { AccessControl } from "../auth/access-control.ts";
import { patientIdOf, policyOf, type ResolvedPolicy } from "../auth/access-policy.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import { actingForKey, principalKey, requestIdKey } from "../rpc/context-keys.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import type { EmergencyState } from "./emergency.ts";
import type { Actor, EmergencyIntake, JournalAudit } from "./emergency-intake.ts";
import {
  emergencyToProto,
  kindFromProto,
  locationFromProto,
  severityFromProto,
  stateFromProto,
} from "./emergency-mapping.ts";
import { parseEmergencyName } from "./emergency-record.ts";
import { type EmergencyWatchDeps, watchEmergency } from "./emergency-watch.ts";

/** What EmergencyService needs. */
export interface EmergencyServiceDeps extends Omit<EmergencyWatchDeps, "read"> {
  readonly intake: EmergencyIntake;
  readonly access: AccessControl;
  readonly patients: Pick<PatientRepository, "get">;
  readonly clock: Clock;
}

const defaultPageSize = 25;
const maxPageSize = 100;

/**
 * EmergencyService handlers: protobuf in, protobuf out. The pipeline has already
 * decided that the caller may act for the patient the request names (the patient, a
 * guardian holding the REQUEST_EMERGENCIES grant, or staff the policy admits); each
 * handler checks again that it touches exactly that patient's emergencies.
 */
export function emergencyService(deps: EmergencyServiceDeps): Partial<ServiceImpl<typeof EmergencyService>> {
  return {
    async createEmergency(request, context) {
      const patientId = await scopedPatient(deps, context, request.parent);
      const emergency = request.emergency ?? create(EmergencySchema);
      const kind = kindFromProto(emergency.kind);
      const severity = severityFromProto(emergency.severity);
      // protovalidate refuses these first; kept so the use case never sees an unknown value.
      if (kind === undefined) throw invalidArgument("emergency.kind", "must be a known kind");
      if (severity === undefined) throw invalidArgument("emergency.severity", "must be CRITICAL, SERIOUS or URGENT");
      const { view, merged } = await deps.intake.create(
        {
          patientId,
          requestId: request.requestId.toLowerCase(),
          kind,
          severity,
          description: emergency.description,
          location: locationFromProto(emergency.location, deps.clock.now()),
          callbackPhone: emergency.callbackPhone,
          requestedBy: actorOf(context),
        },
        auditWithin(context),
        journalAudit(context),
      );
      return { emergency: emergencyToProto(view), merged };
    },

    async getEmergency(request, context) {
      const { patientId, emergencyId } = await scopedEmergency(deps, context, request.name);
      // One still in the journal (accepted while the database was down) answers from there.
      const view = await deps.intake.read(emergencyId).then(
        (read) => read ?? deps.intake.pendingView(emergencyId),
        (error: unknown) => {
          const pending = deps.intake.pendingView(emergencyId);
          if (pending === undefined) throw error;
          return pending;
        },
      );
      if (view === undefined || view.emergency.patientId !== patientId) throw notFound("Emergency");
      return { emergency: emergencyToProto(view) };
    },

    async listEmergencies(request, context) {
      const patientId = await scopedPatient(deps, context, request.parent);
      const states = [...new Set(request.states.map(stateFromProto))]
        .filter((s): s is EmergencyState => s !== undefined)
        .sort();
      // The token is bound to this exact query: replaying it against another is INVALID_ARGUMENT.
      const scope = `emergencies|${patientId}|${states.join(",")}`;
      const after = decodePageToken(scope, request.pageToken);
      const beforeId = after === undefined ? undefined : String(after.id);
      if (beforeId !== undefined && !isUuid(beforeId))
        throw invalidArgument("page_token", "not a page token of this list");
      const pageSize = Math.min(request.pageSize > 0 ? request.pageSize : defaultPageSize, maxPageSize);
      const views = await deps.intake.list(patientId, states, beforeId, pageSize + 1);
      const page = views.slice(0, pageSize);
      const last = page.at(-1);
      return {
        emergencies: page.map(emergencyToProto),
        nextPageToken:
          views.length > pageSize && last !== undefined ? encodePageToken(scope, { id: last.emergency.id }) : "",
      };
    },

    async cancelEmergency(request, context) {
      const { patientId, emergencyId } = await scopedEmergency(deps, context, request.name);
      const view = await deps.intake.cancel(
        patientId,
        emergencyId,
        actorOf(context),
        request.reason,
        request.etag,
        context.values.get(requestIdKey),
        auditWithin(context),
      );
      return { emergency: emergencyToProto(view) };
    },

    async *watchEmergency(request, context) {
      const { patientId, emergencyId } = await scopedEmergency(deps, context, request.name);
      const policy = policyOf(context.method) as ResolvedPolicy;
      yield* watchEmergency(
        { ...deps, read: (id) => deps.intake.read(id) },
        {
          patientId,
          emergencyId,
          afterSequence: Number(request.afterSequence),
          signal: context.signal,
          recheckAccess: async () => {
            const principal = await deps.access.authenticate(policy, context.requestHeader.get("authorization"));
            deps.access.permit(policy, principal);
            await deps.access.scope(policy, principal, request);
          },
        },
      );
    },
  };
}

/**
 * The patient a request names, as the pipeline admitted it (the caller, a guardian's
 * dependent, or staff's choice). For staff the profile must exist, so an admin or
 * doctor gets NOT_FOUND for a patient that does not rather than an empty list.
 */
async function scopedPatient(deps: EmergencyServiceDeps, context: HandlerContext, name: string): Promise<string> {
  const patientId = patientIdOf(name);
  const actingFor = context.values.get(actingForKey);
  if (patientId === undefined || actingFor === undefined || actingFor.patientId !== patientId || !isUuid(patientId)) {
    throw notFound("Patient");
  }
  const principal = context.values.get(principalKey);
  if (principal?.role !== "patient") await deps.patients.get(patientId);
  return patientId.toLowerCase();
}

async function scopedEmergency(
  deps: EmergencyServiceDeps,
  context: HandlerContext,
  name: string,
): Promise<{ patientId: string; emergencyId: string }> {
  const parsed = parseEmergencyName(name);
  if (parsed === undefined) throw notFound("Emergency");
  const patientId = await scopedPatient(deps, context, `patients/${parsed.patientId}`);
  if (!isUuid(parsed.emergencyId)) throw notFound("Emergency");
  return { patientId, emergencyId: parsed.emergencyId.toLowerCase() };
}

function actorOf(context: HandlerContext): Actor {
  const principal = context.values.get(principalKey);
  if (principal === undefined) throw new DomainError("unauthenticated", "UNAUTHENTICATED", "Log in first.");
  const proxy = context.values.get(actingForKey)?.proxy ?? false;
  return { name: principal.name, role: proxy ? "guardian" : principal.role };
}

/**
 * The call's audit entry for the journal path: its draft goes into the journal and is
 * written at replay, and the pipeline is told not to write it now (it could not).
 */
function journalAudit(context: HandlerContext): JournalAudit | undefined {
  const audit = context.values.get(callAuditKey);
  if (audit === undefined) return undefined;
  return {
    draft: (resource) => audit.draft(AuditOutcome.SUCCESS, "", { resource }),
    journalled: () => {
      audit.recorded = true;
    },
  };
}

/** The call's audit entry, written inside the change's transaction. */
function auditWithin(context: HandlerContext): (em: EntityManager, resource: string) => Promise<void> {
  return async (em, resource) => {
    await context.values.get(callAuditKey)?.within(em, { resource });
  };
}
