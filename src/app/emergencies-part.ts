import { EmergencyService } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import { createOrm } from "../db/orm.ts";
import { backoffMs } from "../emergencies/emergency.ts";
import { emergencyService } from "../emergencies/emergency-handlers.ts";
import { DispatchSealer, generateDispatchKeys } from "../emergencies/dispatch-details.ts";
import { EmergencyIntake } from "../emergencies/emergency-intake.ts";
import { EmergencySealer } from "../emergencies/emergency-sealing.ts";
import { emergencySqlWith } from "../emergencies/emergency-store.ts";
import { EmergencyUpdates } from "../emergencies/emergency-updates.ts";
import { type RunningFailSafe, startFailSafe } from "../emergencies/journal/start-fail-safe.ts";
import type { EmergencyLane, LaneHandler } from "../emergencies/lane/emergency-lane.ts";
import { InProcessLane } from "../emergencies/lane/in-process-lane.ts";
import { JetStreamLane } from "../emergencies/lane/jetstream-lane.ts";
import { OutboxRelay } from "../emergencies/outbox-relay.ts";
import { PrecedenceGate } from "../emergencies/precedence-gate.ts";
import { StatusApplier } from "../emergencies/status-applier.ts";
import type { ServiceRegistration } from "../rpc/call-pipeline.ts";
import { type ParamedicDispatch, startParamedicDispatch } from "../simulators/paramedic-dispatch.ts";
import type { AppContext, StartedPart } from "./app-context.ts";
import type { NotificationsPart } from "./notifications-part.ts";

/** The emergencies part, started: tests reach the lane and the relay through it. */
export interface EmergenciesPart extends StartedPart {
  readonly lane: EmergencyLane;
  readonly relay: OutboxRelay;
  /** Holds routine calls back while emergency work runs (startApp gates every other service with it). */
  readonly precedence: PrecedenceGate;
}

/**
 * Starts the emergency lane: intake, the outbox relay to JetStream, status events, live
 * tracking. Precedence over routine work (functional safety 3): the emergencies have
 * their own connection pool (EMERGENCY_DB_POOL_MAX), their own NATS connection, stream,
 * subjects and durable consumer, and their own worker budget (EMERGENCY_WORKERS), so a
 * flood of routine RPCs holding every routine connection cannot delay them. Inside the
 * process, the PrecedenceGate (EMERGENCY_PRECEDENCE_ROUTINE_CALLS) holds routine calls
 * back while emergency work runs (CreateEmergency, CancelEmergency, a dispatch publish, a
 * status event), so an emergency queues less behind them on the one event loop.
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
  const precedence = new PrecedenceGate({
    routineCalls: settings.precedenceRoutineCalls,
    graceMs: settings.precedenceGraceMs,
  });
  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    while (closers.length > 0) await (closers.pop() as () => Promise<unknown>)().catch(() => undefined);
  };
  try {
    const orm = await createOrm(
      {
        url: context.orm.config.get("clientUrl") as string,
        poolMax: settings.dbPoolMax,
        connectTimeoutMs: config.dbConnectTimeoutMs,
      },
      logger.child({ component: "emergencies-orm" }),
    );
    closers.push(() => orm.close());
    const em = () => orm.em.fork();
    // Description, location, callback phone and cancel reason: sealed at rest under the app's key ring.
    const sql = emergencySqlWith(new EmergencySealer(context.crypto));
    // ... and sealed to the Paramedic Service's key on the lane (the embedded simulator's, when it runs).
    const paramedic = siblings.simulators?.paramedic;
    const simulatorKeys = paramedic === undefined ? undefined : await generateDispatchKeys();
    const dispatchSealer =
      settings.dispatchKeyFile !== undefined
        ? await DispatchSealer.fromFile(settings.dispatchKeyFile)
        : simulatorKeys?.sealer;
    if (dispatchSealer === undefined) {
      log.warn(
        "PARAMEDIC_DISPATCH_KEY_FILE is not set: dispatch requests reach the Paramedic Service WITHOUT description, location or callback phone",
      );
    }
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

    // Publishing counts as emergency work for the precedence gate.
    const lanePublisher = withPrecedence(lane, precedence);
    let relay: OutboxRelay | undefined;
    // Functional safety 1: CreateEmergency's local journal while PostgreSQL is down.
    const journal = await startFailSafe({
      settings,
      dataDir: config.dataDir,
      codec: security.auth.secretBox,
      em,
      sql,
      lane: lanePublisher,
      clock,
      audit: security.audit,
      logger: log,
      committed: (id) => {
        updates.announce(id);
        relay?.kick();
      },
    });
    if (journal !== undefined) closers.push(() => journal.close());
    const intake = new EmergencyIntake({
      em,
      sql,
      dispatch: dispatchSealer,
      clock,
      failSafe: journal?.failSafe,
      mergeWindowSeconds: settings.mergeWindowSeconds,
      publishNow: (message) => {
        lanePublisher.publish("requested", message.priority, message.msgId, message.payload).then(
          () => relay?.kick(),
          // NATS down or slow: the relay's retries with backoff take it from here.
          () => relay?.kick(),
        );
      },
      committed: (id) => {
        updates.announce(id);
        relay?.kick();
      },
    });
    relay = new OutboxRelay({
      em,
      sql,
      lane: lanePublisher,
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
      sql,
      clock,
      notifier: notifications.notifier,
      audit: security.audit,
      logger: log,
      committed: (id) => updates.announce(id),
    });
    const statusConsumer = await lane.consume({
      durable: "patient_status",
      group: "status",
      handler: withJournal(journal, (delivery) => precedence.emergency(() => applier.handle(delivery))),
      workers: settings.workers,
      retryDelayMs: (count) => backoffMs(count, settings.retryBaseMs, settings.retryMaxMs),
    });
    closers.push(() => statusConsumer.stop());

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
        // A configured key is a real Paramedic Service's: the simulator cannot open what is sealed to it.
        opener: settings.dispatchKeyFile === undefined ? simulatorKeys?.opener : undefined,
      });
      closers.push(() => dispatch.stop());
    }

    const impl = emergencyService({
      intake,
      access: security.access,
      patients,
      clock,
      updates,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      catchUpIntervalMs: settings.catchUpIntervalMs,
    });
    const { createEmergency, cancelEmergency } = impl;
    if (createEmergency !== undefined) {
      impl.createEmergency = (request, handlerContext) =>
        precedence.emergency(async () => createEmergency(request, handlerContext));
    }
    if (cancelEmergency !== undefined) {
      impl.cancelEmergency = (request, handlerContext) =>
        precedence.emergency(async () => cancelEmergency(request, handlerContext));
    }
    return {
      registrations: [{ service: EmergencyService, impl }],
      lane,
      relay: started,
      precedence,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** Status events of an emergency still in the journal wait for its replay. */
function withJournal(journal: RunningFailSafe | undefined, handler: LaneHandler): LaneHandler {
  return journal === undefined ? handler : journal.afterReplay(handler);
}

/** The lane, with every publish counted as emergency work (the relay's dispatch). */
function withPrecedence(lane: EmergencyLane, precedence: PrecedenceGate): EmergencyLane {
  return {
    kind: lane.kind,
    publish: (topic, priority, msgId, data) => precedence.emergency(() => lane.publish(topic, priority, msgId, data)),
    consume: (options) => lane.consume(options),
    close: () => lane.close(),
  };
}

/**
 * The registrations with every unary method of every service but EmergencyService
 * started through the gate: at once outside a hold (one field read), held back while
 * emergency work runs. Streams are left alone (they are long-lived; their messages are
 * pushed by the work that causes them).
 */
export function routineUnderPrecedence(
  registrations: readonly ServiceRegistration[],
  precedence: PrecedenceGate,
): ServiceRegistration[] {
  return registrations.map((registration) => {
    if (registration.service === EmergencyService) return registration;
    // Read through the object (a class instance keeps its handlers on the prototype), bound to it.
    const source = registration.impl as Record<string, unknown>;
    const impl: Record<string, unknown> = {};
    for (const method of registration.service.methods) {
      const handler = source[method.localName];
      if (typeof handler !== "function") continue;
      if (method.methodKind !== "unary") {
        impl[method.localName] = handler.bind(source);
        continue;
      }
      const unary = handler as (request: unknown, context: unknown) => unknown;
      impl[method.localName] = (request: unknown, context: unknown) =>
        precedence.holding
          ? precedence.routine(async () => unary.call(source, request, context))
          : unary.call(source, request, context);
    }
    return { ...registration, impl: impl as ServiceRegistration["impl"] };
  });
}
