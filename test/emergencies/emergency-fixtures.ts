import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import {
  type Emergency,
  Emergency_State,
  EmergencyKind,
  type EmergencySchema,
  EmergencySeverity,
} from "../../gen/telemed/patient/v1/emergency_pb.js";
import {
  type CreateEmergencyRequest,
  EmergencyService,
  type WatchEmergencyResponse,
} from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Assignment_State } from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import type { CreateEmergencyRequestSchema } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import type { ParamedicSimulator } from "../../src/simulators/paramedic-simulator.ts";
import type { TestApp } from "../support/test-app.ts";

export { eventually } from "../notifications/notification-fixtures.ts";

/** An EmergencyService client, over Connect (default) or gRPC. */
export function emergencyClient(
  t: TestApp,
  interceptor: Interceptor,
  protocol: "connect" | "grpc" = "connect",
): Client<typeof EmergencyService> {
  const options = { baseUrl: t.baseUrl, interceptors: [interceptor] };
  return createClient(
    EmergencyService,
    protocol === "grpc" ? createGrpcTransport(options) : createConnectTransport({ ...options, httpVersion: "1.1" }),
  );
}

/** A valid CreateEmergency for `patient` (`patients/{id}`), with a fresh request id. */
export function emergencyRequest(
  patient: string,
  overrides: Partial<MessageInitShape<typeof EmergencySchema>> = {},
  requestId: string = randomUUID(),
): MessageInitShape<typeof CreateEmergencyRequestSchema> {
  return {
    parent: patient,
    requestId,
    emergency: {
      kind: EmergencyKind.CARDIAC,
      severity: EmergencySeverity.CRITICAL,
      description: "Chest pain for 20 minutes",
      location: {
        latLng: { latitude: 12.9716, longitude: 77.5946 },
        accuracyMeters: 15,
        landmark: "blue gate opposite the temple",
      },
      callbackPhone: "+919812345678",
      ...overrides,
    } as MessageInitShape<typeof EmergencySchema>,
  };
}

/** The paramedic simulator of a test app. */
export function paramedicOf(t: TestApp): ParamedicSimulator {
  const simulator = t.app.siblings.simulators?.paramedic;
  if (simulator === undefined) throw new Error("the test app has no paramedic simulator");
  return simulator;
}

/**
 * Closes every assignment still holding a unit, so the next emergency gets one at once
 * (the simulator has five units; a file's earlier tests may have used them all).
 */
export function freeUnits(t: TestApp): void {
  const paramedic = paramedicOf(t);
  for (const assignment of paramedic.assignments()) {
    if (assignment.state >= Assignment_State.DISPATCHED && assignment.state < Assignment_State.CLOSED) {
      paramedic.advance(assignment.name, Assignment_State.CLOSED);
    }
  }
}

/** `assignments/{id}` of an emergency. */
export function assignmentOf(emergency: Emergency | undefined): string {
  return `assignments/${emergency?.name.split("/").at(-1)}`;
}

/** Emergency state names, for readable assertions. */
export const stateName = (state: Emergency_State | undefined): string => Emergency_State[state ?? 0] ?? "?";

/** Reads a WatchEmergency stream event by event, with timeouts. */
export class EmergencyStream {
  readonly #iterator: AsyncIterator<WatchEmergencyResponse>;
  readonly #abort = new AbortController();

  constructor(client: Client<typeof EmergencyService>, request: { name: string; afterSequence?: bigint }) {
    this.#iterator = client.watchEmergency(request, { signal: this.#abort.signal })[Symbol.asyncIterator]();
  }

  /** The next event that is not a heartbeat; `done` when the stream ended. */
  async next(timeoutMs = 5000): Promise<WatchEmergencyResponse | "done"> {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no stream event within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        const result = await Promise.race([this.#iterator.next(), timeout]);
        if (result.done) return "done";
        if (result.value.event.case !== "heartbeat") return result.value;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  close(): void {
    this.#abort.abort();
  }
}

export type { CreateEmergencyRequest };
