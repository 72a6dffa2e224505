import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import {
  EmergencyCancelledSchema,
  EmergencyRequestedSchema,
  EmergencyStatusChangedSchema,
} from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import { type Assignment, Assignment_State } from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import { Emergency_State } from "../../gen/telemed/patient/v1/emergency_pb.js";
import type { Priority } from "../emergencies/emergency.ts";
import type { EmergencyLane, LaneConsumer, LaneDelivery } from "../emergencies/lane/emergency-lane.ts";
import type { Logger } from "../observability/logger.ts";
import type { DispatchOpener } from "../emergencies/dispatch-details.ts";
import type { DispatchDetails } from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import type { ParamedicSimulator } from "./paramedic-simulator.ts";
import { SimulatorError } from "./simulator-errors.ts";
import * as grpc from "@grpc/grpc-js";

/** Assignment states as the Patient Service's emergency states; QUEUED is internal to dispatch. */
const reported: ReadonlyMap<Assignment_State, Emergency_State> = new Map([
  [Assignment_State.DISPATCHED, Emergency_State.DISPATCHED],
  [Assignment_State.EN_ROUTE, Emergency_State.EN_ROUTE],
  [Assignment_State.ON_SCENE, Emergency_State.ON_SCENE],
  [Assignment_State.TRANSPORTING, Emergency_State.TRANSPORTING],
  [Assignment_State.AT_HOSPITAL, Emergency_State.AT_HOSPITAL],
  [Assignment_State.CLOSED, Emergency_State.CLOSED],
  [Assignment_State.CANCELLED, Emergency_State.CANCELLED],
]);

/** The running dispatch side of the simulator. */
export interface ParamedicDispatch {
  stop(): Promise<void>;
}

/**
 * The Paramedic Service's end of the emergency lane, around the in-memory simulator:
 * a durable pull consumer (explicit acks, P1 before P2 before P3) turns dispatch
 * requests into assignments and cancellations into cancels, and every assignment
 * change goes back as an EmergencyStatusChanged with `Nats-Msg-Id` `{emergency id}.{sequence}`.
 *
 * Idempotent: a redelivered request finds its assignment (the simulator keys it by the
 * emergency id) and publishes nothing new. A request is acknowledged only after the
 * status events it caused are on the lane, so a failure to publish them has it
 * delivered again rather than leaving the patient without news; events of one
 * assignment are published in order, retried until they are stored.
 */
export async function startParamedicDispatch(
  paramedic: ParamedicSimulator,
  lane: EmergencyLane,
  logger: Logger,
  options: { retryBaseMs?: number; opener?: DispatchOpener } = {},
): Promise<ParamedicDispatch> {
  const retryBaseMs = options.retryBaseMs ?? 250;
  let stopped = false;
  const chains = new Map<string, Promise<void>>();

  const publishStatus = async (assignment: Assignment, state: Emergency_State) => {
    const emergencyId = assignment.name.slice("assignments/".length);
    const unit = assignment.unit === "" ? undefined : paramedic.unit(assignment.unit);
    const data = toBinary(
      EmergencyStatusChangedSchema,
      create(EmergencyStatusChangedSchema, {
        metadata: { eventId: randomUUID(), occurTime: assignment.updateTime, producer: "paramedic-service" },
        emergency: assignment.emergency,
        priority: assignment.priority,
        sequence: assignment.lastSequence,
        state,
        eventTime: assignment.updateTime,
        unit: assignment.unit,
        callSign: unit?.callSign ?? "",
        etaTime: assignment.etaTime,
        unitLocation: unit?.location,
        destinationHospital: assignment.destinationHospital,
      }),
    );
    for (let attempt = 1; !stopped; attempt += 1) {
      try {
        await lane.publish(
          "status",
          assignment.priority as Priority,
          `${emergencyId}.${assignment.lastSequence}`,
          data,
        );
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, retryBaseMs * 2 ** Math.min(attempt, 6))));
      }
    }
  };

  const unsubscribe = paramedic.onChange((assignment) => {
    const state = reported.get(assignment.state);
    if (state === undefined) return;
    const previous = chains.get(assignment.name) ?? Promise.resolve();
    const next = previous.then(() => publishStatus(assignment, state));
    chains.set(assignment.name, next);
  });

  const handle = async (delivery: LaneDelivery): Promise<void> => {
    if (delivery.topic === "requested") {
      const request = fromBinary(EmergencyRequestedSchema, delivery.data);
      const details = await openDetails(request.sealedDetails, options.opener, logger, delivery.msgId);
      const assignment = paramedic.assign(request.emergency, request.priority, details);
      await chains.get(assignment.name);
      return;
    }
    if (delivery.topic === "cancelled") {
      const cancel = fromBinary(EmergencyCancelledSchema, delivery.data);
      const name = `assignments/${cancel.emergency.split("/").at(-1) ?? ""}`;
      try {
        paramedic.cancel(name);
      } catch (error) {
        // Closed already: nothing to cancel. Anything else (not received yet) is retried.
        if (!(error instanceof SimulatorError && error.code === grpc.status.FAILED_PRECONDITION)) throw error;
      }
      await chains.get(name);
    }
  };

  const consumer: LaneConsumer = await lane.consume({
    durable: "paramedic_dispatch",
    group: "dispatch",
    handler: async (delivery) => {
      try {
        await handle(delivery);
      } catch (error) {
        logger.warn(
          { err: { type: (error as Error).name }, msgId: delivery.msgId },
          "paramedic simulator: dispatch message failed; redelivery later",
        );
        throw error;
      }
    },
    workers: 1,
    retryDelayMs: (count) => Math.min(10_000, retryBaseMs * 2 ** Math.min(count, 6)),
  });
  return {
    async stop() {
      stopped = true;
      unsubscribe();
      await consumer.stop();
    },
  };
}

/**
 * The responders' details of a request, opened with the simulator's private key. A unit
 * is sent whatever happens here: details that are missing, sealed to another key or do
 * not open are logged (by message id only) and the crew calls the dispatcher instead.
 */
async function openDetails(
  sealed: string,
  opener: DispatchOpener | undefined,
  logger: Logger,
  msgId: string,
): Promise<DispatchDetails | undefined> {
  if (sealed === "" || opener === undefined) return undefined;
  try {
    return await opener.open(sealed);
  } catch (error) {
    logger.warn(
      { err: { type: (error as Error).name }, msgId },
      "paramedic simulator: dispatch details do not open; dispatching without them",
    );
    return undefined;
  }
}
