import { NotificationService } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import { openMessageBus } from "../messaging/open-message-bus.ts";
import type { MessageBus } from "../messaging/message-bus.ts";
import { DeliveryDispatcher, type RecipientAddresses } from "../notifications/delivery-dispatcher.ts";
import { NotificationFanout } from "../notifications/notification-fanout.ts";
import { notificationService } from "../notifications/notification-handlers.ts";
import { NotificationRecorder } from "../notifications/notification-recorder.ts";
import { NotificationStore } from "../notifications/notification-store.ts";
import type { Notifier, ReminderPreferences } from "../notifications/notifier.ts";
import { PreferenceStore } from "../notifications/preference-store.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import { DomainError } from "../shared/domain-errors.ts";
import type { AppContext, StartedPart } from "./app-context.ts";

/** The notifications context, started: what producers in other contexts use. */
export interface NotificationsPart extends StartedPart {
  readonly notifier: Notifier;
  readonly reminderPreferences: ReminderPreferences;
  /**
   * The messaging connection (NATS when NATS_URL is set), for other parts that need
   * it (the emergencies' JetStream, issue #5). Closed by this part's `close`.
   */
  readonly bus: MessageBus;
}

/**
 * Starts the notification store, the live fan-out between replicas (NATS, or the
 * in-process stand-in in the embedded default) and channel delivery to the
 * Notification Service.
 */
export async function startNotifications(context: AppContext): Promise<NotificationsPart> {
  const { config, logger, orm, clock, siblings, security, patients } = context;
  const settings = config.notifications;
  const log = logger.child({ component: "notifications" });
  const bus = await openMessageBus(
    {
      url: config.natsUrl,
      name: settings.natsClientName,
      connectTimeoutMs: settings.natsConnectTimeoutMs,
      reconnectWaitMs: settings.natsReconnectWaitMs,
    },
    logger.child({ component: "messaging" }),
  );
  const em = () => orm.em.fork();
  const store = new NotificationStore(em);
  const preferences = new PreferenceStore(em);
  const fanout = new NotificationFanout(bus, log, settings.maxStreamsPerPatient);
  fanout.start();
  const dispatcher = new DeliveryDispatcher({
    em,
    client: siblings.clients.notification,
    addresses: profileAddresses(patients),
    clock,
    logger: log,
    settings: {
      intervalMs: settings.dispatchIntervalMs,
      batch: settings.dispatchBatch,
      maxAttempts: settings.deliveryMaxAttempts,
      retryBaseMs: settings.deliveryRetryBaseMs,
      leaseMs: 60_000,
    },
  });
  dispatcher.start();
  const notifier = new NotificationRecorder({
    orm,
    store,
    preferences,
    fanout,
    clock,
    defaultTimeZone: settings.defaultTimeZone,
    deliveriesQueued: () => dispatcher.kick(),
  });
  const defaults = {
    timeZone: settings.defaultTimeZone,
    reminderOffsetsSeconds: settings.defaultReminderOffsetsSeconds,
  };
  return {
    registrations: [
      {
        service: NotificationService,
        impl: notificationService({
          store,
          preferences,
          fanout,
          access: security.access,
          patients,
          clock,
          defaults,
          heartbeatIntervalMs: settings.heartbeatIntervalMs,
          catchUpIntervalMs: settings.catchUpIntervalMs,
        }),
      },
    ],
    notifier,
    reminderPreferences: {
      async reminderOffsetsFor(patientIds) {
        const stored = await preferences.getMany(patientIds);
        return new Map(
          patientIds.map((id) => [id, stored.get(id)?.reminderOffsetsSeconds ?? defaults.reminderOffsetsSeconds]),
        );
      },
    },
    bus,
    async close() {
      fanout.stop();
      await dispatcher.stop();
      await bus.close();
    },
  };
}

/** Email and phone from the patient's profile; push needs registered devices (issue #6), none yet. */
function profileAddresses(patients: PatientRepository): RecipientAddresses {
  return {
    async addressOf(patientId, channel) {
      if (channel === "push") return undefined;
      try {
        const patient = await patients.get(patientId);
        const address = channel === "email" ? patient.contact.email : patient.contact.phone;
        return address === "" ? undefined : address;
      } catch (error) {
        // A deleted profile has nowhere to send to; anything else is retried.
        if (error instanceof DomainError && error.kind === "not-found") return undefined;
        throw error;
      }
    },
  };
}
