import { ConsultationService } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import type { AppContext, StartedPart } from "./app-context.ts";
import type { NotificationsPart } from "./notifications-part.ts";

/** Starts booking, the consultation state machine, its status cache and reminders. */
export async function startConsultations(
  _context: AppContext,
  _notifications: NotificationsPart,
): Promise<StartedPart> {
  return {
    registrations: [
      { service: ConsultationService, impl: {}, landsWith: "issue #4 (teleconsultations and notifications)" },
    ],
    close: async () => undefined,
  };
}
