import { EmergencyService } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import type { AppContext, StartedPart } from "./app-context.ts";
import type { NotificationsPart } from "./notifications-part.ts";

/** Starts the emergency lane: intake, the outbox relay to JetStream, status events, live tracking. */
export async function startEmergencies(_context: AppContext, _notifications: NotificationsPart): Promise<StartedPart> {
  return {
    registrations: [{ service: EmergencyService, impl: {}, landsWith: "issue #5 (emergencies)" }],
    close: async () => undefined,
  };
}
