import { NotificationService } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import type { Notifier, ReminderPreferences } from "../notifications/notifier.ts";
import type { AppContext, StartedPart } from "./app-context.ts";

/** The notifications context, started: what producers in other contexts use. */
export interface NotificationsPart extends StartedPart {
  readonly notifier: Notifier;
  readonly reminderPreferences: ReminderPreferences;
}

/** Starts the notification store, the live fan-out and channel delivery. */
export async function startNotifications(_context: AppContext): Promise<NotificationsPart> {
  const notSet = (): never => {
    throw new Error("notifications land with issue #4");
  };
  return {
    registrations: [
      { service: NotificationService, impl: {}, landsWith: "issue #4 (teleconsultations and notifications)" },
    ],
    notifier: { recordWithin: notSet, notify: notSet },
    reminderPreferences: { reminderOffsetsFor: notSet },
    close: async () => undefined,
  };
}
