import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import {
  type EmergencyStatusChanged,
  EmergencyStatusChangedSchema,
} from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { NotificationCategory, NotificationPriority } from "../../gen/telemed/patient/v1/notification_pb.js";
import type { AuditEntryDraft } from "../audit/audit-entry.ts";
import type { Notifier } from "../notifications/notifier.ts";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import { type EmergencyState, isEnded, statusDecision } from "./emergency.ts";
import { type EmergencyRecord, emergencyName, parseEmergencyName, type StoredAssignment } from "./emergency-record.ts";
import type { EmergencySql } from "./emergency-store.ts";
import { stateFromProto } from "./emergency-mapping.ts";
import { statusNotice } from "./status-notices.ts";
import type { LaneDelivery } from "./lane/emergency-lane.ts";

/** What applying status events needs. */
export interface ApplierDeps {
  readonly em: () => EntityManager;
  /** The SQL of the emergencies tables. */
  readonly sql: EmergencySql;
  readonly clock: Clock;
  readonly notifier: Pick<Notifier, "recordWithin">;
  readonly audit: { recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void> };
  readonly logger: Logger;
  /** After a commit that changed the emergency. */
  readonly committed: (emergencyId: string) => void;
}

/** The Paramedic Service as an actor. */
const paramedicActor = "services/paramedic-service";

/**
 * Applies the Paramedic Service's status events. Each event is one transaction on the
 * emergency's locked row: the guard (statusDecision: newer sequence, forward only,
 * nothing after the end), the state and assignment, the timeline entry, the patient's
 * CRITICAL emergency notification (it passes every preference) and the audit entry
 * commit together; then the watchers are woken. A duplicate or stale event changes
 * nothing and is acknowledged. A malformed event is logged (without its content) and
 * acknowledged: redelivering it would never make it readable.
 */
export class StatusApplier {
  readonly #deps: ApplierDeps;

  constructor(deps: ApplierDeps) {
    this.#deps = deps;
  }

  /** The lane handler; throwing has the event delivered again later. */
  readonly handle = async (delivery: LaneDelivery): Promise<void> => {
    let event: EmergencyStatusChanged;
    try {
      event = fromBinary(EmergencyStatusChangedSchema, delivery.data);
    } catch {
      this.#deps.logger.warn({ msgId: delivery.msgId }, "an undecodable emergency status event was dropped");
      return;
    }
    const name = parseEmergencyName(event.emergency);
    const state = stateFromProto(event.state);
    if (name === undefined || state === undefined || event.sequence <= 0n) {
      this.#deps.logger.warn({ msgId: delivery.msgId }, "a malformed emergency status event was dropped");
      return;
    }
    const applied = await this.apply(name.patientId, name.emergencyId, Number(event.sequence), state, event);
    if (applied) this.#deps.committed(name.emergencyId);
  };

  /** Applies one event; false when it was a duplicate, stale or about no known emergency. */
  async apply(
    patientId: string,
    emergencyId: string,
    sequence: number,
    state: EmergencyState,
    event: EmergencyStatusChanged,
  ): Promise<boolean> {
    let announce: (() => void) | undefined;
    const applied = await this.#deps.em().transactional(async (em) => {
      const record = await this.#deps.sql.get(em, emergencyId, { forUpdate: true });
      if (record === undefined || record.patientId !== patientId) {
        this.#deps.logger.warn({ emergencyId }, "a status event for an unknown emergency was dropped");
        return false;
      }
      const decision = statusDecision(record.state, record.lastSourceSequence, sequence, state);
      if (!decision.apply) {
        this.#deps.logger.debug({ emergencyId, sequence, skip: decision.skip }, "emergency status event ignored");
        return false;
      }
      const now = this.#deps.clock.now();
      const eventTime = event.eventTime === undefined ? now : timestampDate(event.eventTime);
      const position = record.timelineLength + 1;
      const updated = await this.#deps.sql.update(em, emergencyId, {
        state,
        lastSourceSequence: sequence,
        timelineLength: position,
        assignment: assignmentAfter(record, event),
        updatedAt: now,
        ...(isEnded(state) ? { endedAt: eventTime } : {}),
      });
      await this.#deps.sql.insertEvent(
        em,
        emergencyId,
        {
          position,
          state,
          sourceSequence: sequence,
          eventTime,
          actor: event.unit === "" ? paramedicActor : event.unit,
          actorRole: "paramedic",
          note: event.note.slice(0, 200),
        },
        now,
      );
      const notice = statusNotice(state, updated.assignment);
      announce = await this.#deps.notifier.recordWithin(em, [
        {
          recipientPatientId: patientId,
          category: NotificationCategory.EMERGENCIES,
          priority: NotificationPriority.CRITICAL,
          title: notice.title,
          body: notice.body,
          subjectResource: emergencyName(patientId, emergencyId),
          dedupeKey: `emergency:${emergencyId}:${position}`,
        },
      ]);
      await this.#deps.audit.recordWithin(em, [statusAudit(patientId, emergencyId, event.metadata?.eventId ?? "")]);
      return true;
    });
    announce?.();
    return applied;
  }
}

/** The assignment after an event: what the event says, over what was known. */
function assignmentAfter(record: EmergencyRecord, event: EmergencyStatusChanged): StoredAssignment {
  const before = record.assignment;
  const eta = event.etaTime === undefined ? before?.etaTime : timestampDate(event.etaTime).toISOString();
  const unitLocation =
    event.unitLocation === undefined
      ? before?.unitLocation
      : { latitude: event.unitLocation.latitude, longitude: event.unitLocation.longitude };
  return {
    unit: event.unit || before?.unit || "",
    callSign: event.callSign || before?.callSign || "",
    ...(eta === undefined ? {} : { etaTime: eta }),
    ...(unitLocation === undefined ? {} : { unitLocation }),
    destinationHospital: event.destinationHospital || before?.destinationHospital || "",
  };
}

function statusAudit(patientId: string, emergencyId: string, eventId: string): AuditEntryDraft {
  return {
    actor: paramedicActor,
    actorRole: ActorRole.SERVICE,
    subjectPatientId: patientId,
    proxy: false,
    action: AuditAction.UPDATE,
    resource: emergencyName(patientId, emergencyId),
    outcome: AuditOutcome.SUCCESS,
    rpc: "",
    requestId: eventId,
    clientAddress: "",
    reason: "",
  };
}
