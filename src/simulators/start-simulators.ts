import { createValidator } from "@bufbuild/protovalidate";
import * as grpc from "@grpc/grpc-js";
import { isIPv6 } from "node:net";
import { DoctorService } from "../../gen/telemed/doctor/v1/doctor_service_pb.js";
import { NotificationDeliveryService } from "../../gen/telemed/notification/v1/notification_service_pb.js";
import { ParamedicService } from "../../gen/telemed/paramedic/v1/paramedic_service_pb.js";
import { XrayService } from "../../gen/telemed/xray/v1/xray_service_pb.js";
import type { Logger } from "../observability/logger.ts";
import { patternMatcher } from "../rpc/request-validation.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { doctorHandlers } from "./doctor-service.ts";
import { DoctorSimulator } from "./doctor-simulator.ts";
import { addProtoService, type ServeOptions } from "./grpc-js-service.ts";
import { notificationHandlers } from "./notification-service.ts";
import { NotificationSimulator } from "./notification-simulator.ts";
import { paramedicHandlers } from "./paramedic-service.ts";
import { ParamedicSimulator } from "./paramedic-simulator.ts";
import { SeededRandom } from "./seeded-random.ts";
import { xrayHandlers } from "./xray-service.ts";
import { XraySimulator } from "./xray-simulator.ts";

/** Options of the simulators. */
export interface SimulatorOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Address to listen on; 127.0.0.1 by default. */
  readonly host?: string;
  /** Time for hold ttls, join windows, scheduled deliveries; the system clock by default. */
  readonly clock?: Clock;
  /** Makes ids, tokens and images reproducible; random by default. */
  readonly seed?: number;
  /** Told about handler bugs (answered as INTERNAL). */
  readonly logger?: Logger;
}

/** The four simulators' state, which tests inspect and drive directly. */
export interface Simulators {
  readonly doctor: DoctorSimulator;
  readonly paramedic: ParamedicSimulator;
  readonly xray: XraySimulator;
  readonly notification: NotificationSimulator;
}

/** Simulators serving on a port. */
export interface RunningSimulators extends Simulators {
  /** Base URL for gRPC clients, for example `http://127.0.0.1:9090`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting calls, lets running ones finish for up to `graceMs` (2 s), then cuts the rest. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Builds the four sibling simulators and a @grpc/grpc-js server serving all of
 * them, without listening: for callers that bind it themselves.
 */
export function createSimulators(options: Omit<SimulatorOptions, "port" | "host"> = {}): Simulators & {
  server: grpc.Server;
} {
  const clock = options.clock ?? systemClock;
  // One generator per simulator, so what one does never shifts another's ids.
  const random = (stream: number) =>
    new SeededRandom(options.seed === undefined ? undefined : options.seed * 31 + stream);
  const doctor = new DoctorSimulator({ clock, random: random(1) });
  const paramedic = new ParamedicSimulator({ clock, random: random(2) });
  const xray = new XraySimulator({ clock, random: random(3) });
  const notification = new NotificationSimulator({ clock, random: random(4) });

  // No channelz: its per-call bookkeeping was a visible share of each simulated call, and nothing reads it.
  const server = new grpc.Server({ "grpc.max_receive_message_length": 1024 * 1024, "grpc.enable_channelz": 0 });
  // The same pattern matcher as the Patient Service's own validation: RegExp where a checker
  // proves a pattern linear, RE2 otherwise (protovalidate's RE2-only default was most of a HoldSlot).
  const validator = createValidator({ regexMatch: patternMatcher() });
  const serve = (domain: string): ServeOptions => ({
    domain,
    validator,
    onInternalError: (error, method) => options.logger?.error({ err: error, method }, "simulator handler failed"),
  });
  addProtoService(server, DoctorService, doctorHandlers(doctor, clock), serve("doctor.telemed.example"));
  addProtoService(server, ParamedicService, paramedicHandlers(paramedic), serve("paramedic.telemed.example"));
  addProtoService(server, XrayService, xrayHandlers(xray), serve("xray.telemed.example"));
  addProtoService(
    server,
    NotificationDeliveryService,
    notificationHandlers(notification),
    serve("notification.telemed.example"),
  );
  return { server, doctor, paramedic, xray, notification };
}

/**
 * Starts the Doctor, Paramedic, X-ray and Notification simulators as real gRPC
 * services (HTTP/2 cleartext), all four on one port.
 */
export async function startSimulators(options: SimulatorOptions = {}): Promise<RunningSimulators> {
  const host = options.host ?? "127.0.0.1";
  const { server, ...simulators } = createSimulators(options);
  const port = await new Promise<number>((resolve, reject) => {
    const address = isIPv6(host) ? `[${host}]:${options.port ?? 0}` : `${host}:${options.port ?? 0}`;
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  return {
    ...simulators,
    url: `http://${urlHost(host)}:${port}`,
    port,
    stop: (graceMs = 2000) => shutdown(server, graceMs),
  };
}

function shutdown(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.forceShutdown(), graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

/** Where a client on this machine reaches a server bound to `host`. */
function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return isIPv6(host) ? `[${host}]` : host;
}
