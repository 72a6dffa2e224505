import { Redis } from "ioredis";
import { ConsultationService } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import { Booking } from "../consultations/booking.ts";
import { consultationService } from "../consultations/consultation-handlers.ts";
import type { ConsultationDeps } from "../consultations/consultation-deps.ts";
import { ConsultationLifecycle } from "../consultations/consultation-lifecycle.ts";
import { ConsultationReads } from "../consultations/consultation-reads.ts";
import { ConsultationRepository } from "../consultations/consultation-repository.ts";
import { ConsultationStore } from "../consultations/consultation-store.ts";
import { ConsultationSummaries } from "../consultations/consultation-summaries.ts";
import { DoctorAccounts } from "../consultations/doctor-accounts.ts";
import { DoctorDirectory } from "../consultations/doctor-directory.ts";
import { DoctorGateway } from "../consultations/doctor-gateway.ts";
import { FeedbackStore } from "../consultations/feedback.ts";
import { ReminderScanner } from "../consultations/reminder-scanner.ts";
import { MemoryStatusCache, RedisStatusCache, type StatusCache } from "../consultations/status-cache.ts";
import type { AppContext, StartedPart } from "./app-context.ts";
import type { NotificationsPart } from "./notifications-part.ts";

/** The consultations context, started. */
export interface ConsultationsPart extends StartedPart {
  /** Operator action: links a doctor's account to its Doctor Service doctor id. */
  linkDoctorAccount(accountId: string, doctorId: string): Promise<void>;
}

/** Starts booking, the consultation state machine, its status cache and reminders. */
export async function startConsultations(
  context: AppContext,
  notifications: NotificationsPart,
): Promise<ConsultationsPart> {
  const { config, logger, orm, clock, siblings, security } = context;
  const settings = config.consultations;
  const em = () => orm.em.fork();
  const log = logger.child({ component: "consultations" });
  const cache = openStatusCache(config.redisUrl, config.redisKeyPrefix, settings.statusCacheTtlSeconds * 1000, () =>
    clock.now().getTime(),
  );
  const repository = new ConsultationRepository(em);
  const store = new ConsultationStore({ repository, cache, notifier: notifications.notifier, clock, logger: log });
  const doctors = new DoctorAccounts(em, () => clock.now().getTime());
  const deps: ConsultationDeps = {
    store,
    doctor: new DoctorGateway(siblings.clients.doctor),
    doctors,
    clock,
    config: settings,
    secretBox: security.auth.secretBox,
    logger: log,
    audit: security.audit,
  };
  const booking = new Booking(deps);
  const summaries = new ConsultationSummaries(context.crypto);
  const feedback = new FeedbackStore(
    repository,
    security.auth.secretBox,
    clock,
    settings.feedbackEditWindowSeconds * 1000,
  );
  const scanner = new ReminderScanner({
    store,
    booking,
    preferences: notifications.reminderPreferences,
    clock,
    logger: log,
    intervalMs: settings.reminderScanIntervalMs,
    horizonSeconds: settings.reminderHorizonSeconds,
    staleBookingMs: (settings.holdTtlSeconds + 60) * 1000,
  });
  scanner.start();
  const impl = consultationService({
    deps,
    booking,
    lifecycle: new ConsultationLifecycle(deps, summaries),
    reads: new ConsultationReads(deps),
    directory: new DoctorDirectory(deps.doctor, feedback, clock),
    feedback,
    summaries,
  });
  return {
    registrations: [{ service: ConsultationService, impl }],
    linkDoctorAccount: (accountId, doctorId) => doctors.link(accountId, doctorId, clock.now()),
    async close() {
      await scanner.close();
      await cache.close();
    },
  };
}

function openStatusCache(redisUrl: string | undefined, prefix: string, ttlMs: number, now: () => number): StatusCache {
  if (redisUrl === undefined) return new MemoryStatusCache(ttlMs, now);
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, enableAutoPipelining: true });
  return new RedisStatusCache(redis, `${prefix}consultation-status:`, ttlMs, true);
}
