import { create, isMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, type ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type { Logger } from "../observability/logger.ts";
import type { RpcMetrics } from "../observability/metrics.ts";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { type AuditSink, CallAudit, callAuditDraft, callAuditKey } from "../audit/call-audit.ts";
import type { AccessControl } from "../auth/access-control.ts";
import { requirePolicies, type ResolvedPolicy } from "../auth/access-policy.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { actingForKey, principalKey, requestIdKey } from "./context-keys.ts";
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
  /** The access decision (token, role, patient scope) of every call. */
  readonly access: AccessControl;
  /** Where audit entries go; undefined only in tests of the transport layer. */
  readonly audit: AuditSink | undefined;
}

type AnyUnary = (request: Message, context: HandlerContext) => unknown;
type AnyStream = (request: Message, context: HandlerContext) => AsyncIterable<unknown>;

const requestIdPattern = /^[A-Za-z0-9._-]{1,64}$/;
/** Actions recorded when the call succeeds; changes are recorded by their handlers, in their transactions. */
const changeActions = new Set<AuditAction>([AuditAction.CREATE, AuditAction.UPDATE, AuditAction.DELETE]);

/**
 * Wraps every method of every registered service with the one call pipeline
 * (request id, access decision, validation, audit, error translation, metrics) and
 * indexes them by path. This is the single place cross-cutting rules plug in, so no
 * handler can skip them. A method without an access policy stops the server from
 * being built at all.
 */
export function buildRpcTable(registrations: readonly ServiceRegistration[], deps: PipelineDeps): RpcTable {
  const policies = requirePolicies(registrations.map((registration) => registration.service));
  const entries: RpcEntry[] = [];
  for (const { service, impl, landsWith } of registrations) {
    for (const method of service.methods) {
      const handler = (impl as Record<string, unknown>)[method.localName];
      const fallback = unimplemented(method, landsWith);
      const path = methodPath(method);
      const policy = policies.get(path) as ResolvedPolicy;
      if (method.methodKind === "unary") {
        const call = wrapUnary(method, policy, (handler as AnyUnary | undefined) ?? fallback, deps);
        entries.push({ path, service, method, kind: "unary", call });
      } else if (method.methodKind === "server_streaming") {
        const inner = (handler as AnyStream | undefined) ?? streamOf(fallback);
        entries.push({
          path,
          service,
          method,
          kind: "server_streaming",
          call: wrapStream(method, policy, inner, deps),
        });
      } else {
        throw new Error(`${path}: only unary and server-streaming methods are supported`);
      }
    }
  }
  return new RpcTable(entries);
}

function wrapUnary(method: DescMethod, policy: ResolvedPolicy, handler: AnyUnary, deps: PipelineDeps) {
  return async (request: Message, context: HandlerContext): Promise<Message> => {
    const call = beginCall(context, deps, method, policy, request);
    try {
      await call.admit();
      const result = await handler(request, context);
      await call.succeeded();
      return asOutput(method, result);
    } catch (error) {
      throw await call.failed(error);
    }
  };
}

function wrapStream(method: DescMethod, policy: ResolvedPolicy, handler: AnyStream, deps: PipelineDeps) {
  return async function* (request: Message, context: HandlerContext): AsyncIterable<Message> {
    const call = beginCall(context, deps, method, policy, request);
    try {
      await call.admit();
      // A stream's access is recorded when it opens: its end may be hours later, or never.
      await call.succeeded();
      for await (const item of handler(request, context)) yield asOutput(method, item);
      call.finished();
    } catch (error) {
      throw await call.failed(error);
    }
  };
}

function asOutput(method: DescMethod, result: unknown): Message {
  return isMessage(result, method.output) ? result : create(method.output, result as Record<string, unknown>);
}

/**
 * Starts the bookkeeping of one call: assigns its request id (a caller's
 * `x-request-id` when well-formed), decides access, and on completion records the
 * audit entry, metrics and logs. Successes log at debug (the hot path stays cheap at
 * the default level); client errors at info; anything that became INTERNAL was
 * logged at error by the mapping.
 */
function beginCall(
  context: HandlerContext,
  deps: PipelineDeps,
  method: DescMethod,
  policy: ResolvedPolicy,
  request: Message,
) {
  const started = performance.now();
  const offered = context.requestHeader.get("x-request-id");
  const requestId = offered && requestIdPattern.test(offered) ? offered : randomUUID();
  context.values.set(requestIdKey, requestId);
  context.responseHeader.set("x-request-id", requestId);
  const audit =
    deps.audit === undefined || policy.audit === undefined
      ? undefined
      : new CallAudit(deps.audit, context, request, policy.audit);
  if (audit !== undefined) context.values.set(callAuditKey, audit);
  /** Where the call is: a refusal while admitting is an access denial, later a failure. */
  let stage: "admitting" | "validating" | "handling" | "auditing" | "streaming" = "admitting";
  const finish = (code: string): number => {
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.observe(method.name, context.protocolName, code, seconds);
    return Math.round(seconds * 1e4) / 10;
  };
  const logSuccess = () => {
    const ms = finish("ok");
    if (deps.logger.isLevelEnabled("debug")) {
      deps.logger.debug({ requestId, rpc: methodPath(method), protocol: context.protocolName, ms }, "rpc ok");
    }
  };
  return {
    /**
     * The access decision, then protovalidate: who calls and whether their role may
     * call at all, whether they may act on the patient the request names, then the
     * request's rules. A caller without access learns nothing from validation
     * messages, and nothing refused here reaches the handler.
     */
    async admit(): Promise<void> {
      const principal = await deps.access.authenticate(policy, context.requestHeader.get("authorization"));
      context.values.set(principalKey, principal);
      deps.access.permit(policy, principal);
      context.values.set(actingForKey, await deps.access.scope(policy, principal, request));
      stage = "validating";
      const invalid = deps.validator.check(method.input, request);
      if (invalid) throw invalid;
      stage = "handling";
    },
    /** Records the success of an audited read (a change was recorded by its handler); the answer waits for it. */
    async succeeded(): Promise<void> {
      stage = "auditing";
      if (audit !== undefined && !audit.recorded) {
        if (changeActions.has(audit.action)) {
          callLogger(deps, context, method).warn("a change was not audited by its handler; auditing it now");
        }
        await audit.record(AuditOutcome.SUCCESS, "");
      }
      stage = "streaming";
      if (method.methodKind === "unary") logSuccess();
    },
    finished: logSuccess,
    async failed(error: unknown): Promise<ConnectError> {
      const log = callLogger(deps, context, method);
      if (stage === "auditing") {
        // Data must not leave without its audit entry: the caller may retry.
        log.error({ err: error }, "audit entry could not be written");
        error = statusError(
          Code.Unavailable,
          "AUDIT_UNAVAILABLE",
          "The service cannot record this access now. Retry later.",
        );
      }
      const clientError = toClientError(error, log);
      const ms = finish(Code[clientError.code]);
      if (clientError.code !== Code.Internal) {
        log.info({ protocol: context.protocolName, code: Code[clientError.code], ms }, "rpc refused");
      }
      await recordFailure(deps, context, request, policy, stage, clientError, log);
      return clientError;
    },
  };
}

/** A denial is always audited; a failure only for audited methods. The audit never hides the original answer. */
async function recordFailure(
  deps: PipelineDeps,
  context: HandlerContext,
  request: Message,
  policy: ResolvedPolicy,
  stage: string,
  error: ConnectError,
  log: Logger,
): Promise<void> {
  if (deps.audit === undefined || stage === "validating" || stage === "auditing") return;
  const denied = stage === "admitting";
  if (!denied && (policy.audit === undefined || context.values.get(callAuditKey)?.recorded)) return;
  // A refused attempt on a patient's data belongs in that patient's access view too.
  const named = context.values.get(actingForKey) === undefined ? policy.readPatientId(request) : undefined;
  const draft = callAuditDraft(
    context,
    request,
    policy.audit ?? AuditAction.UNSPECIFIED,
    denied ? AuditOutcome.DENIED : AuditOutcome.FAILURE,
    Code[error.code] ?? "UNKNOWN",
    named === undefined || !isUuid(named) ? {} : { subjectPatientId: named },
  );
  await deps.audit.record(draft).catch((auditError: unknown) => {
    log.error({ err: auditError }, "audit entry of a refused call could not be written");
  });
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
