import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import {
  EmergencyCancelledSchema,
  EmergencyRequestedSchema,
} from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import { type EmergencyRecord, emergencyName } from "./emergency-record.ts";

/** Producer name in event metadata. */
export const producer = "patient-service";

/**
 * The dispatch request for the Paramedic Service. It carries the emergency's name and
 * priority only: the details responders need (`sealed_details`, encrypted to the
 * Paramedic Service's key) are not sent yet, so nothing clinical and no location is
 * stored in the NATS store.
 */
export function requestedMessage(record: EmergencyRecord, requestId: string): Uint8Array {
  return toBinary(
    EmergencyRequestedSchema,
    create(EmergencyRequestedSchema, {
      metadata: { eventId: randomUUID(), occurTime: timestampFromDate(record.createdAt), producer, requestId },
      emergency: emergencyName(record.patientId, record.id),
      priority: record.priority,
      requestTime: timestampFromDate(record.createdAt),
    }),
  );
}

/** The cancellation of a dispatch request. */
export function cancelledMessage(record: EmergencyRecord, at: Date, requestId: string): Uint8Array {
  return toBinary(
    EmergencyCancelledSchema,
    create(EmergencyCancelledSchema, {
      metadata: { eventId: randomUUID(), occurTime: timestampFromDate(at), producer, requestId },
      emergency: emergencyName(record.patientId, record.id),
      priority: record.priority,
      cancelTime: timestampFromDate(at),
    }),
  );
}

/** Message ids on the lane (Nats-Msg-Id): the emergency id, and `{id}.cancel`. */
export const msgIds = {
  requested: (emergencyId: string) => emergencyId,
  cancelled: (emergencyId: string) => `${emergencyId}.cancel`,
};
