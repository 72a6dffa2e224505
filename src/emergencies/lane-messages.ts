import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import {
  EmergencyCancelledSchema,
  EmergencyRequestedSchema,
} from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import type { DispatchSealer } from "./dispatch-details.ts";
import { type EmergencyRecord, emergencyName } from "./emergency-record.ts";

/** Producer name in event metadata. */
export const producer = "patient-service";

/**
 * The dispatch request for the Paramedic Service: the emergency's name and priority in
 * clear (what routing and ordering need), and the details responders need
 * (description, location, callback phone) only in `sealed_details`, a JWE to the
 * Paramedic Service's key (dispatch-details.ts), so nothing clinical, no location and
 * no phone number is stored in clear in the outbox row or the NATS store. Without a
 * sealer (no Paramedic Service key configured) the details are left out.
 */
export async function requestedMessage(
  record: EmergencyRecord,
  requestId: string,
  sealer: DispatchSealer | undefined,
): Promise<Uint8Array> {
  const sealed = sealer === undefined ? undefined : await sealer.seal(record);
  return toBinary(
    EmergencyRequestedSchema,
    create(EmergencyRequestedSchema, {
      metadata: { eventId: randomUUID(), occurTime: timestampFromDate(record.createdAt), producer, requestId },
      emergency: emergencyName(record.patientId, record.id),
      priority: record.priority,
      requestTime: timestampFromDate(record.createdAt),
      sealedDetails: sealed?.sealedDetails ?? "",
      sealedDetailsKeyId: sealed?.keyId ?? "",
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
