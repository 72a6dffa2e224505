import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { DoctorService } from "../../gen/telemed/doctor/v1/doctor_service_pb.js";
import { NotificationDeliveryService } from "../../gen/telemed/notification/v1/notification_service_pb.js";
import { ParamedicService } from "../../gen/telemed/paramedic/v1/paramedic_service_pb.js";
import { XrayService } from "../../gen/telemed/xray/v1/xray_service_pb.js";
import { grpcUnary } from "./grpc-unary-transport.ts";

/** Base URLs of the four sibling services, for example `http://127.0.0.1:9090`. */
export interface SiblingEndpoints {
  readonly doctor: string;
  readonly paramedic: string;
  readonly xray: string;
  readonly notification: string;
}

/** Typed gRPC clients of the sibling services. */
export interface SiblingClients {
  readonly doctor: Client<typeof DoctorService>;
  readonly paramedic: Client<typeof ParamedicService>;
  readonly xray: Client<typeof XrayService>;
  readonly notification: Client<typeof NotificationDeliveryService>;
  /** Closes the HTTP/2 connections; calls in flight fail with CANCELED. */
  close(): void;
}

/** Tuning of the sibling clients. */
export interface SiblingClientOptions {
  /** Deadline of a unary call without its own `timeoutMs`; 5 s. */
  readonly unaryTimeoutMs?: number;
  /** Deadline of a streaming call (an X-ray download) without its own; 5 min. */
  readonly streamTimeoutMs?: number;
  /** Largest response message accepted; 4 MiB (an X-ray chunk is at most 1 MiB). */
  readonly readMaxBytes?: number;
  /** Run on every call, for example to add a service token or a request id. */
  readonly interceptors?: Interceptor[];
}

/**
 * Creates gRPC clients (Connect-ES over HTTP/2) for the sibling services. Siblings at
 * the same URL share one HTTP/2 connection, as the embedded simulators do. Unary calls
 * go straight onto that connection (grpc-unary-transport.ts), streams through connect-node. Every call
 * has a deadline, so a hung sibling cannot hold a patient's request forever: a short
 * one for unary calls, a long one for streams; a call can pass its own `timeoutMs`.
 */
export function createSiblingClients(endpoints: SiblingEndpoints, options: SiblingClientOptions = {}): SiblingClients {
  const sessions = new Map<string, Http2SessionManager>();
  const transports = new Map<string, Transport>();
  const transportFor = (baseUrl: string): Transport => {
    let transport = transports.get(baseUrl);
    if (transport === undefined) {
      const sessionManager = new Http2SessionManager(baseUrl, { pingIntervalMs: 30_000, connectTimeoutMs: 5_000 });
      sessions.set(baseUrl, sessionManager);
      const readMaxBytes = options.readMaxBytes ?? 4 * 1024 * 1024;
      const unaryTimeoutMs = options.unaryTimeoutMs ?? 5_000;
      const connect = withDefaultTimeouts(
        createGrpcTransport({
          // gRPC is HTTP/2 only: createGrpcTransport has no httpVersion option; h2c for http:// URLs.
          baseUrl,
          sessionManager,
          readMaxBytes,
          interceptors: options.interceptors ?? [],
        }),
        unaryTimeoutMs,
        options.streamTimeoutMs ?? 300_000,
      );
      // Unary calls (every booking makes several) take the lean path on the same connection;
      // interceptors need connect's pipeline, so with any, connect serves everything.
      transport =
        (options.interceptors ?? []).length > 0
          ? connect
          : {
              unary: grpcUnary({ sessionManager, defaultTimeoutMs: unaryTimeoutMs, readMaxBytes }),
              stream: connect.stream,
            };
      transports.set(baseUrl, transport);
    }
    return transport;
  };
  return {
    doctor: createClient(DoctorService, transportFor(endpoints.doctor)),
    paramedic: createClient(ParamedicService, transportFor(endpoints.paramedic)),
    xray: createClient(XrayService, transportFor(endpoints.xray)),
    notification: createClient(NotificationDeliveryService, transportFor(endpoints.notification)),
    close() {
      for (const session of sessions.values()) session.abort();
    },
  };
}

/**
 * connect-node has one `defaultTimeoutMs` per transport; a download needs far longer
 * than a HoldSlot should be allowed. This wrapper picks the default by method kind.
 * An explicit `timeoutMs` (0 for none) still wins.
 */
function withDefaultTimeouts(inner: Transport, unaryMs: number, streamMs: number): Transport {
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      inner.unary(method, signal, timeoutMs ?? unaryMs, header, input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      inner.stream(method, signal, timeoutMs ?? streamMs, header, input, contextValues),
  };
}
