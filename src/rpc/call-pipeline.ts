import { create, isMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
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
    const started = performance.now();
    let code = "ok";
    try {
      begin(context, deps, method, request);
      const result = await handler(request, context);
      return isMessage(result, method.output) ? result : create(method.output, result as Record<string, unknown>);
    } catch (error) {
      const clientError = toClientError(error, callLogger(deps, context, method));
      code = Code[clientError.code];
      throw clientError;
    } finally {
      deps.metrics.observe(method.name, context.protocolName, code, (performance.now() - started) / 1000);
    }
  };
}

function wrapStream(method: DescMethod, handler: AnyStream, deps: PipelineDeps) {
  return async function* (request: Message, context: HandlerContext): AsyncIterable<Message> {
    const started = performance.now();
    let code = "ok";
    try {
      begin(context, deps, method, request);
      for await (const item of handler(request, context)) {
        yield isMessage(item, method.output) ? item : create(method.output, item as Record<string, unknown>);
      }
    } catch (error) {
      const clientError = toClientError(error, callLogger(deps, context, method));
      code = Code[clientError.code];
      throw clientError;
    } finally {
      deps.metrics.observe(method.name, context.protocolName, code, (performance.now() - started) / 1000);
    }
  };
}

/** Assigns the request id and refuses invalid requests before any handler runs. */
function begin(context: HandlerContext, deps: PipelineDeps, method: DescMethod, request: Message): void {
  const offered = context.requestHeader.get("x-request-id");
  const requestId = offered && requestIdPattern.test(offered) ? offered : randomUUID();
  context.values.set(requestIdKey, requestId);
  context.responseHeader.set("x-request-id", requestId);
  const invalid = deps.validator.check(method.input, request);
  if (invalid) throw invalid;
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
