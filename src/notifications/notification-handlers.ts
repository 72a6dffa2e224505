import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { NotificationPreferencesSchema } from "../../gen/telemed/patient/v1/notification_pb.js";
import type { NotificationService } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import type { AccessControl } from "../auth/access-control.ts";
import { patientIdOf, policyOf, type ResolvedPolicy } from "../auth/access-policy.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import { actingForKey, principalKey } from "../rpc/context-keys.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, etagMismatch, notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { categoriesFromProto, notificationToProto } from "./notification-mapping.ts";
import { versionFromPreferencesEtag } from "./notification-preferences.ts";
import type { NotificationStore } from "./notification-store.ts";
import { type WatchDeps, watchNotifications } from "./notification-watch.ts";
import { preferenceChangesFromProto, preferenceFields, preferencesToProto } from "./preference-mapping.ts";
import type { PreferenceStore } from "./preference-store.ts";

/** What NotificationService needs. */
export interface NotificationServiceDeps extends WatchDeps {
  readonly store: NotificationStore;
  readonly preferences: PreferenceStore;
  readonly access: AccessControl;
  readonly patients: Pick<PatientRepository, "get">;
  readonly clock: Clock;
  readonly defaults: { readonly timeZone: string; readonly reminderOffsetsSeconds: readonly number[] };
}

const defaultPageSize = 25;
const maxPageSize = 100;
const notificationName = /^patients\/([A-Za-z0-9_-]{1,64})\/notifications\/([A-Za-z0-9_-]{1,64})$/;

/**
 * NotificationService handlers: protobuf in, protobuf out. The pipeline has already
 * decided that the caller may act on the patient the request names (the patient, or
 * an admin); each handler checks again that it reads exactly that patient.
 */
export function notificationService(deps: NotificationServiceDeps): Partial<ServiceImpl<typeof NotificationService>> {
  return {
    async *watchNotifications(request, context) {
      const recipientId = await scopedPatient(deps, context, request.parent);
      const policy = policyOf(context.method) as ResolvedPolicy;
      yield* watchNotifications(deps, {
        recipientId,
        cursor: request.cursor,
        categories: categoriesFromProto(request.categories),
        signal: context.signal,
        // The same decision as when the stream opened, on the same token: a revoked
        // session, a deleted profile or an expired token ends the stream.
        recheckAccess: async () => {
          const principal = await deps.access.authenticate(policy, context.requestHeader.get("authorization"));
          deps.access.permit(policy, principal);
          await deps.access.scope(policy, principal, request);
        },
      });
    },

    async listNotifications(request, context) {
      const recipientId = await scopedPatient(deps, context, request.parent);
      const categories = [...new Set(categoriesFromProto(request.categories))].sort();
      // The token is bound to this exact query: replaying it against another is INVALID_ARGUMENT.
      const scope = `notifications|${recipientId}|${request.unreadOnly}|${categories.join(",")}`;
      const after = decodePageToken(scope, request.pageToken);
      const before = after === undefined ? undefined : Number(after.s);
      if (before !== undefined && !Number.isSafeInteger(before)) {
        throw new DomainError("invalid-argument", "INVALID_FIELD", "Invalid page_token.");
      }
      const pageSize = Math.min(request.pageSize > 0 ? request.pageSize : defaultPageSize, maxPageSize);
      const [rows, unreadCount] = await Promise.all([
        deps.store.list({
          recipientId,
          unreadOnly: request.unreadOnly,
          categories,
          beforeSequence: before,
          limit: pageSize + 1,
        }),
        deps.store.unreadCount(recipientId),
      ]);
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        notifications: page.map(notificationToProto),
        nextPageToken: rows.length > pageSize && last !== undefined ? encodePageToken(scope, { s: last.sequence }) : "",
        unreadCount,
      };
    },

    async markNotificationsRead(request, context) {
      const recipientId = await scopedPatient(deps, context, request.parent);
      const ids = request.names.flatMap((name) => {
        const match = notificationName.exec(name);
        // Names of the parent only (the contract's rule); an id that cannot exist marks nothing.
        return match !== null && match[1] === recipientId && isUuid(match[2] as string) ? [match[2] as string] : [];
      });
      const selector =
        request.readThroughTime !== undefined ? { through: timestampDate(request.readThroughTime) } : { ids };
      const markedCount = await deps.store.fork().transactional(async (em) => {
        const marked = await deps.store.markRead(em, recipientId, selector, deps.clock.now());
        await context.values.get(callAuditKey)?.within(em, { resource: `${request.parent}/notifications` });
        return marked;
      });
      return { markedCount };
    },

    async getNotificationPreferences(request, context) {
      const patientId = await scopedPatient(deps, context, request.name);
      return {
        notificationPreferences: preferencesToProto(await deps.preferences.get(patientId), deps.defaults),
      };
    },

    async updateNotificationPreferences(request, context) {
      const source = request.notificationPreferences ?? create(NotificationPreferencesSchema);
      const patientId = await scopedPatient(deps, context, source.name);
      const paths = [...new Set(request.updateMask?.paths ?? [])];
      if (paths.length === 0 || paths.some((path) => !(preferenceFields as readonly string[]).includes(path))) {
        throw new DomainError("invalid-argument", "INVALID_UPDATE_MASK", "Invalid update_mask.", {
          violations: [{ field: "update_mask", description: `must name some of: ${preferenceFields.join(", ")}` }],
        });
      }
      const changes = preferenceChangesFromProto(source, paths);
      const expectedVersion = source.etag === "" ? undefined : versionFromPreferencesEtag(source.etag);
      if (source.etag !== "" && expectedVersion === undefined) throw etagMismatch("NotificationPreferences");
      const updated = await deps.preferences.update(
        patientId,
        changes,
        expectedVersion,
        deps.clock.now(),
        (em) => context.values.get(callAuditKey)?.within(em) ?? Promise.resolve(),
      );
      return { notificationPreferences: preferencesToProto(updated, deps.defaults) };
    },
  };
}

/**
 * The patient a request names, as the pipeline admitted it. Checked again here (the
 * policy has no proxy grant, so it must be the caller themself or an admin's choice),
 * and for staff the profile must exist: an admin gets NOT_FOUND for a patient that
 * does not, rather than an empty store.
 */
async function scopedPatient(deps: NotificationServiceDeps, context: HandlerContext, name: string): Promise<string> {
  const patientId = patientIdOf(name);
  const actingFor = context.values.get(actingForKey);
  if (patientId === undefined || actingFor === undefined || actingFor.proxy || actingFor.patientId !== patientId) {
    throw notFound("Patient");
  }
  const principal = context.values.get(principalKey);
  if (principal?.patientId !== patientId) {
    if (!isUuid(patientId)) throw notFound("Patient");
    await deps.patients.get(patientId);
  }
  return patientId;
}
