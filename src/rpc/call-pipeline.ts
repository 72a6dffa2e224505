import { create, isMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, type ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type { Logger } from "../observability/logger.ts";
import type { RpcMetrics } from "../observability/metrics.ts";
import { requestIdKey } from "./context-keys.ts";
import { statusError, toClientError } from "./error-mapping.ts";
import type { RequestValidator } from "./request-validation.ts";
import { methodPath, RpcTable, type RpcEntry } from "./rpc-table.ts";

/** A service and its implementation; methods missing from `impl` answer UNIMPLEMENTED. */
export interface ServiceRegistration<S extends DescService = DescService> {
  readonly service: S;
  readonly impl: Partial<ServiceImpl<S>>;
  /** Where the missing methods will come from, for the UNIMPLEMENTED message (e.g. "issue #3"). */
  readonly landsWith?: string;
}

/** What the pipeline needs around every call. */
export interface PipelineDeps {
  readonly logger: Logger;
  readonly metrics: RpcMetrics;
  readonly validator: RequestValidator;
}

type AnyUnary = (request: Message, context: HandlerContext) => unknown;
type AnyStream = (request: Message, context: HandlerContext) => AsyncIterable<unknown>;

const requestIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Wraps every method of every registered service with the one call pipeline
 * (request id, validation, error translation, metrics) and indexes them by path.
 * This is the single place cross-cutting rules plug in, so no handler can skip them.
 */
export function buildRpcTable(registrations: readonly ServiceRegistration[], deps: PipelineDeps): RpcTable {
  const entries: RpcEntry[] = [];
  for (const { service, impl, landsWith } of registrations) {
    for (const method of service.methods) {
      const handler = (impl as Record<string, unknown>)[method.localName];
      const fallback = unimplemented(method, landsWith);
      const path = methodPath(method);
      if (method.methodKind === "unary") {
        const call = wrapUnary(method, (handler as AnyUnary | undefined) ?? fallback, deps);
        entries.push({ path, service, method, kind: "unary", call });
      } else if (method.methodKind === "server_streaming") {
        const inner = (handler as AnyStream | undefined) ?? streamOf(fallback);
        entries.push({ path, service, method, kind: "server_streaming", call: wrapStream(method, inner, deps) });
      } else {
        throw new Error(`${path}: only unary and server-streaming methods are supported`);
      }
    }
  }
  return new RpcTable(entries);
}

function wrapUnary(method: DescMethod, handler: AnyUnary, deps: PipelineDeps) {
  return async (request: Message, context: HandlerContext): Promise<Message> => {
    const call = beginCall(context, deps, method);
    try {
      call.validate(request);
      const result = await handler(request, context);
      call.succeeded();
      return asOutput(method, result);
    } catch (error) {
      throw call.failed(error);
    }
  };
}

function wrapStream(method: DescMethod, handler: AnyStream, deps: PipelineDeps) {
  return async function* (request: Message, context: HandlerContext): AsyncIterable<Message> {
    const call = beginCall(context, deps, method);
    try {
      call.validate(request);
      for await (const item of handler(request, context)) yield asOutput(method, item);
      call.succeeded();
    } catch (error) {
      throw call.failed(error);
    }
  };
}

function asOutput(method: DescMethod, result: unknown): Message {
  return isMessage(result, method.output) ? result : create(method.output, result as Record<string, unknown>);
}

/**
 * Starts the bookkeeping of one call: assigns its request id (a caller's
 * `x-request-id` when well-formed), and on completion records metrics and logs.
 * Successes log at debug (the hot path stays cheap at the default level); client
 * errors at info; anything that became INTERNAL was logged at error by the mapping.
 */
function beginCall(context: HandlerContext, deps: PipelineDeps, method: DescMethod) {
  const started = performance.now();
  const offered = context.requestHeader.get("x-request-id");
  const requestId = offered && requestIdPattern.test(offered) ? offered : randomUUID();
  context.values.set(requestIdKey, requestId);
  context.responseHeader.set("x-request-id", requestId);
  const finish = (code: string): number => {
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.observe(method.name, context.protocolName, code, seconds);
    return Math.round(seconds * 1e4) / 10;
  };
  return {
    /** Refuses a request that breaks its protovalidate rules before any handler runs. */
    validate(request: Message): void {
      const invalid = deps.validator.check(method.input, request);
      if (invalid) throw invalid;
    },
    succeeded(): void {
      const ms = finish("ok");
      if (deps.logger.isLevelEnabled("debug")) {
        deps.logger.debug({ requestId, rpc: methodPath(method), protocol: context.protocolName, ms }, "rpc ok");
      }
    },
    failed(error: unknown): ConnectError {
      const log = callLogger(deps, context, method);
      const clientError = toClientError(error, log);
      const ms = finish(Code[clientError.code]);
      if (clientError.code !== Code.Internal) {
        log.info({ protocol: context.protocolName, code: Code[clientError.code], ms }, "rpc refused");
      }
      return clientError;
    },
  };
}

function callLogger(deps: PipelineDeps, context: HandlerContext, method: DescMethod): Logger {
  return deps.logger.child({ requestId: context.values.get(requestIdKey), rpc: methodPath(method) });
}

function unimplemented(method: DescMethod, landsWith: string | undefined): AnyUnary {
  const when = landsWith ? ` It lands with ${landsWith}.` : "";
  return () => {
    throw statusError(
      Code.Unimplemented,
      "NOT_IMPLEMENTED_YET",
      `${method.parent.name}.${method.name} is not available yet.${when}`,
    );
  };
}

function streamOf(fallback: AnyUnary): AnyStream {
  return async function* (request, context) {
    yield fallback(request, context);
  };
}
