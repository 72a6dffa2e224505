import type { ConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "../observability/logger.ts";
import { RpcMetrics } from "../observability/metrics.ts";
import { buildRpcTable, type ServiceRegistration } from "../rpc/call-pipeline.ts";
import { RequestValidator } from "../rpc/request-validation.ts";
import type { RpcTable } from "../rpc/rpc-table.ts";
import type { AuditSink } from "../audit/call-audit.ts";
import type { AccessControl } from "../auth/access-control.ts";
import { createCallContexts } from "./call-context.ts";
import { peerValues } from "./peer-values.ts";
import { createConnectUnaryHandler } from "./connect-unary.ts";
import { createGrpcUnaryHandler } from "./grpc-unary.ts";
import { HealthState, healthRegistration } from "./health/health-service.ts";
import { createCors } from "./cors.ts";
import { createDispatcher } from "./http-dispatch.ts";
import type { HttpRequest, HttpResponse, PlainHttpRoute } from "./http-types.ts";
import { createOnePortListener, type TlsMaterial } from "./one-port-listener.ts";
import { registerReflection } from "./reflection/reflection-service.ts";
import { createRestTranscoder } from "./rest/rest-transcoder.ts";
import { notFoundFallback } from "./not-found.ts";

/** What a server needs: its services, limits and logger. */
export interface ServerOptions {
  readonly registrations: readonly ServiceRegistration[];
  readonly logger: Logger;
  /** Largest request message, in bytes (Connect's own default is ~4 GiB: never use it). */
  readonly readMaxBytes: number;
  readonly tls?: TlsMaterial;
  /** Browser origins allowed to call (CORS); none by default. */
  readonly corsAllowedOrigins?: readonly string[];
  /** The access decision of every call (tokens, roles, patient scope). */
  readonly access: AccessControl;
  /** Where audit entries go. */
  readonly audit: AuditSink;
  /** The JWKS document served at /.well-known/jwks.json for sibling services. */
  readonly jwks: object;
  /** Process-wide metrics (CPU, memory) belong to the one server main.ts runs, not to test servers. */
  readonly collectProcessMetrics?: boolean;
  /** Plain HTTP routes outside the RPC pipeline (the payment provider's webhook). */
  readonly plainRoutes?: readonly PlainHttpRoute[];
}

/** A built, not yet listening server. */
export interface PatientServer {
  readonly table: RpcTable;
  readonly health: HealthState;
  readonly metrics: RpcMetrics;
  listen(port: number, host: string): Promise<number>;
  /** Reports NOT_SERVING, stops accepting, drains in-flight calls for up to `graceMs`. */
  close(graceMs: number): Promise<void>;
}

/**
 * Builds the one-port server: every registered service over gRPC and Connect (native
 * fast paths for unary calls), gRPC-Web and REST, plus health, reflection and /metrics.
 */
export function createServer(options: ServerOptions): PatientServer {
  const metrics = new RpcMetrics({ collectProcessMetrics: options.collectProcessMetrics ?? false });
  const health = new HealthState();
  const shutdown = new AbortController();
  const pipeline = {
    logger: options.logger,
    metrics,
    validator: new RequestValidator(),
    access: options.access,
    audit: options.audit,
  };
  const table = buildRpcTable([...options.registrations, healthRegistration(health)], pipeline);
  for (const service of table.services()) health.set(service.typeName, "SERVING");

  // connect-node's default; given to both Connect paths so they compress answers alike.
  const acceptCompression = [compressionGzip, compressionBrotli];
  const connect = connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      for (const entry of table.entries()) router.rpc(entry.method as never, entry.call as never);
      registerReflection(router, table.services());
    },
    readMaxBytes: options.readMaxBytes,
    acceptCompression,
    shutdownSignal: shutdown.signal,
    fallback: notFoundFallback,
    contextValues: peerValues,
  });
  const rest = createRestTranscoder(table, { readMaxBytes: options.readMaxBytes, shutdownSignal: shutdown.signal });
  // The native unary paths: one context builder, one shutdown listener for all their calls.
  const createContext = createCallContexts(shutdown.signal);
  const grpcUnary = createGrpcUnaryHandler(table, { readMaxBytes: options.readMaxBytes, createContext });
  const connectUnary = createConnectUnaryHandler(table, {
    readMaxBytes: options.readMaxBytes,
    createContext,
    acceptCompression,
  });
  let accepting = true;
  const dispatch = createDispatcher({
    metrics,
    connectUnary,
    rest: (req, res) => rest.handle(req, res),
    connect: connect as (req: HttpRequest, res: HttpResponse) => void,
    ready: () => accepting,
    jwks: JSON.stringify(options.jwks),
    cors: createCors(options.corsAllowedOrigins ?? []),
    plainRoutes: new Map((options.plainRoutes ?? []).map((route) => [`${route.method} ${route.path}`, route])),
  });
  const listener = createOnePortListener(dispatch, options.tls, grpcUnary);

  return {
    table,
    health,
    metrics,
    listen: (port, host) => listener.listen(port, host),
    close: async (graceMs) => {
      accepting = false;
      health.shutdown();
      // Long-lived streams (watches) end halfway through the grace period so clients
      // reconnect elsewhere, leaving the rest of it for unary calls to finish.
      const timer = setTimeout(() => shutdown.abort(), graceMs / 2);
      await listener.close(graceMs);
      clearTimeout(timer);
      shutdown.abort();
    },
  };
}
