import { EmergencyService } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import { createOrm } from "../db/orm.ts";
import { backoffMs } from "../emergencies/emergency.ts";
import { emergencyService } from "../emergencies/emergency-handlers.ts";
import { EmergencyIntake } from "../emergencies/emergency-intake.ts";
import { EmergencyUpdates } from "../emergencies/emergency-updates.ts";
import type { EmergencyLane } from "../emergencies/lane/emergency-lane.ts";
import { InProcessLane } from "../emergencies/lane/in-process-lane.ts";
import { JetStreamLane } from "../emergencies/lane/jetstream-lane.ts";
import { OutboxRelay } from "../emergencies/outbox-relay.ts";
import { StatusApplier } from "../emergencies/status-applier.ts";
import { type ParamedicDispatch, startParamedicDispatch } from "../simulators/paramedic-dispatch.ts";
import type { AppContext, StartedPart } from "./app-context.ts";
import type { NotificationsPart } from "./notifications-part.ts";

/** The emergencies part, started: tests reach the lane and the relay through it. */
export interface EmergenciesPart extends StartedPart {
  readonly lane: EmergencyLane;
  readonly relay: OutboxRelay;
}

/**
 * Starts the emergency lane: intake, the outbox relay to JetStream, status events, live
 * tracking. Precedence over routine work (functional safety 3): the emergencies have
 * their own connection pool (EMERGENCY_DB_POOL_MAX), their own NATS connection, stream,
 * subjects and durable consumer, and their own worker budget (EMERGENCY_WORKERS), so a
 * flood of routine RPCs holding every routine connection cannot delay them.
 *
 * In embedded mode (no NATS_URL) an in-process lane stands in for JetStream, and the
 * Paramedic Service simulator reads it too; with NATS_URL the simulator, like the real
 * service, opens a connection of its own.
 */
export async function startEmergencies(
  context: AppContext,
  notifications: NotificationsPart,
): Promise<EmergenciesPart> {
  const { config, logger, clock, siblings, security, patients } = context;
  const settings = config.emergencies;
  const log = logger.child({ component: "emergencies" });
  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    while (closers.length > 0) await (closers.pop() as () => Promise<unknown>)().catch(() => undefined);
  };
  try {
    const orm = await createOrm(
      { url: context.orm.config.get("clientUrl") as string, poolMax: settings.dbPoolMax },
      logger.child({ component: "emergencies-orm" }),
    );
    closers.push(() => orm.close());
    const em = () => orm.em.fork();
    const laneSettings = {
      prefix: settings.lanePrefix,
      publishTimeoutMs: settings.publishTimeoutMs,
      replicas: settings.streamReplicas,
      duplicateWindowSeconds: settings.duplicateWindowSeconds,
    };
    const lane: EmergencyLane =
      config.natsUrl === undefined
        ? new InProcessLane(log)
        : await JetStreamLane.open(
            { ...laneSettings, url: config.natsUrl, name: `${config.notifications.natsClientName}-emergencies` },
            log,
          );
    closers.push(() => lane.close());
    const updates = new EmergencyUpdates(notifications.bus, settings.lanePrefix);
    closers.push(async () => updates.stop());

    let relay: OutboxRelay | undefined;
    const intake = new EmergencyIntake({
      em,
      clock,
      mergeWindowSeconds: settings.mergeWindowSeconds,
      committed: (id) => {
        updates.announce(id);
        relay?.kick();
      },
    });
    relay = new OutboxRelay({
      em,
      lane,
      clock,
      audit: security.audit,
      logger: log,
      committed: (ids) => {
        for (const id of ids) updates.announce(id);
      },
      settings: {
        intervalMs: settings.relayIntervalMs,
        batch: settings.relayBatch,
        retryBaseMs: settings.retryBaseMs,
        retryMaxMs: settings.retryMaxMs,
      },
    });
    relay.start();
    const started = relay;
    closers.push(() => started.stop());

    const applier = new StatusApplier({
      em,
      clock,
      notifier: notifications.notifier,
      audit: security.audit,
      logger: log,
      committed: (id) => updates.announce(id),
    });
    const statusConsumer = await lane.consume({
      durable: "patient_status",
      group: "status",
      handler: applier.handle,
      workers: settings.workers,
      retryDelayMs: (count) => backoffMs(count, settings.retryBaseMs, settings.retryMaxMs),
    });
    closers.push(() => statusConsumer.stop());

    const paramedic = siblings.simulators?.paramedic;
    if (paramedic !== undefined) {
      // "Another team's service": over NATS it has a connection of its own.
      const paramedicLane =
        config.natsUrl === undefined
          ? lane
          : await JetStreamLane.open(
              { ...laneSettings, url: config.natsUrl, name: "paramedic-service-simulator" },
              log,
            );
      if (paramedicLane !== lane) closers.push(() => paramedicLane.close());
      const dispatch: ParamedicDispatch = await startParamedicDispatch(paramedic, paramedicLane, log, {
        retryBaseMs: settings.retryBaseMs,
      });
      closers.push(() => dispatch.stop());
    }

    return {
      registrations: [
        {
          service: EmergencyService,
          impl: emergencyService({
            intake,
            access: security.access,
            patients,
            clock,
            updates,
            heartbeatIntervalMs: settings.heartbeatIntervalMs,
            catchUpIntervalMs: settings.catchUpIntervalMs,
          }),
        },
      ],
      lane,
      relay: started,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
