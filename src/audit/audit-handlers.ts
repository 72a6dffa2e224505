import { createHash, type KeyObject } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import {
  AccessEventSchema,
  AuditActionSchema,
  AuditChainVerificationSchema,
  AuditOutcomeSchema,
} from "../../gen/telemed/patient/v1/audit_pb.js";
import type { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { ActorRole, ActorRoleSchema, ActorSchema } from "../../gen/telemed/patient/v1/common_pb.js";
import type { Orm } from "../db/orm.ts";
import { principalKey } from "../rpc/context-keys.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import { invalidArgument } from "../shared/domain-errors.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { type AccessEventRecord, listAccessEvents } from "./access-events.ts";
import { enumFromStored, storedName } from "./audit-fields.ts";
import { verifyAuditChain } from "./audit-verifier.ts";

const defaultPageSize = 50;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the AuditService handlers need. */
export interface AuditServiceDeps {
  /** The ORM, or a factory of EntityManagers (the request's fork). */
  readonly orm: Orm | (() => EntityManager);
  /** Public keys of the checkpoint signers by key id (audit-checkpointer.ts `auditKeyId`). */
  readonly publicKeys: ReadonlyMap<string, KeyObject>;
  readonly clock?: Clock;
}

/**
 * AuditService handlers: a patient's own access view and the admin's chain check.
 * Who may call which is decided by the call pipeline before a handler runs; the
 * handlers trust `request.parent`.
 */
export function auditService(deps: AuditServiceDeps): Partial<ServiceImpl<typeof AuditService>> {
  const em = typeof deps.orm === "function" ? deps.orm : () => (deps.orm as Orm).em.fork();
  const clock = deps.clock ?? systemClock;
  return {
    async listAccessEvents(request, context) {
      const patientId = request.parent.slice("patients/".length).toLowerCase();
      // Ids are UUIDs: any other id has no entries (and must not reach a uuid cast).
      if (!uuidPattern.test(patientId)) return { accessEvents: [], nextPageToken: "" };
      const actorRoles = [...new Set(request.actorRoles.map((role) => storedName(ActorRoleSchema, role)))].sort();
      const startTime = request.startTime && timestampDate(request.startTime);
      const endTime = request.endTime && timestampDate(request.endTime);
      // The token is bound to the list and its filters, as AIP-158 requires.
      const scope = `accessEvents:${fingerprint([patientId, startTime?.toISOString(), endTime?.toISOString(), actorRoles, request.includeOwn])}`;
      const cursor = decodePageToken(scope, request.pageToken);
      const page = await listAccessEvents(em(), {
        patientId,
        startTime,
        endTime,
        actorRoles,
        includeOwn: request.includeOwn,
        pageSize: request.pageSize || defaultPageSize,
        beforeSequence: cursor === undefined ? undefined : cursorSequence(cursor),
      });
      return {
        accessEvents: page.events.map((event) =>
          accessEventToProto(patientId, event, context.values?.get(principalKey)?.role !== "admin"),
        ),
        nextPageToken:
          page.nextBeforeSequence === undefined
            ? ""
            : encodePageToken(scope, { seq: page.nextBeforeSequence.toString() }),
      };
    },

    async verifyAuditChain(request) {
      const result = await verifyAuditChain(em(), deps.publicKeys, {
        startSequence: request.startSequence,
        maxEntries: request.maxEntries,
        clock,
      });
      return {
        verification: create(AuditChainVerificationSchema, {
          ...result,
          checkpointTime: result.checkpointTime && timestampFromDate(result.checkpointTime),
          verifyTime: timestampFromDate(result.verifyTime),
        }),
      };
    },
  };
}

function accessEventToProto(patientId: string, event: AccessEventRecord, maskOtherPatients: boolean) {
  const role = enumFromStored(ActorRoleSchema, event.actor_role);
  const otherPatient = role === ActorRole.PATIENT && event.actor !== `patients/${patientId}`;
  return create(AccessEventSchema, {
    name: `patients/${patientId}/accessEvents/${event.sequence}`,
    actor:
      maskOtherPatients && otherPatient
        ? create(ActorSchema, { role, displayName: "another patient" })
        : create(ActorSchema, { principal: event.actor, role }),
    proxy: event.proxy,
    action: enumFromStored(AuditActionSchema, event.action),
    resource: event.resource,
    outcome: enumFromStored(AuditOutcomeSchema, event.outcome),
    requestId: event.request_id,
    eventTime: timestampFromIsoMicros(event.event_time),
    sequence: BigInt(event.sequence),
  });
}

/** `2026-11-28T10:17:22.780123Z` to a Timestamp, keeping the microseconds a Date would drop. */
function timestampFromIsoMicros(text: string): Timestamp {
  const ms = Date.parse(`${text.slice(0, 19)}Z`);
  const micros = Number(text.slice(20, 26).padEnd(6, "0"));
  return create(TimestampSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: micros * 1000 });
}

function cursorSequence(cursor: Readonly<Record<string, unknown>>): bigint {
  const { seq } = cursor;
  if (typeof seq === "string" && /^[1-9][0-9]{0,18}$/.test(seq)) return BigInt(seq);
  throw invalidArgument("page_token", "not a page token of this list; start again without one");
}

function fingerprint(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("base64url").slice(0, 22);
}
