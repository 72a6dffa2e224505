import { create, isMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, type ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type { Logger } from "../observability/logger.ts";
import type { RpcMetrics } from "../observability/metrics.ts";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { type AuditSink, CallAudit, callAuditDraft, callAuditKey } from "../audit/call-audit.ts";
import type { AccessControl } from "../auth/access-control.ts";
import { requirePolicies, type ResolvedPolicy } from "../auth/access-policy.ts";
import type { Principal } from "../auth/principal.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { type ActingFor, actingForKey, principalKey, requestIdKey } from "./context-keys.ts";
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
    const call = new CallBookkeeping(context, deps, method, policy, request);
    try {
      // Admission and the audit entry of a read settle synchronously on the hot path
      // (cached token, an admin's scope) or give a promise: await only a promise.
      const admitted = call.admit();
      if (admitted !== undefined) await admitted;
      const result = await handler(request, context);
      const audited = call.succeeded();
      if (audited !== undefined) await audited;
      return asOutput(method, result);
    } catch (error) {
      throw await call.failed(error);
    }
  };
}

function wrapStream(method: DescMethod, policy: ResolvedPolicy, handler: AnyStream, deps: PipelineDeps) {
  return async function* (request: Message, context: HandlerContext): AsyncIterable<Message> {
    const call = new CallBookkeeping(context, deps, method, policy, request);
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

/** Where a call is: a refusal while admitting is an access denial, later a failure. */
type Stage = "admitting" | "validating" | "handling" | "auditing" | "streaming";

/**
 * The bookkeeping of one call: assigns its request id (a caller's `x-request-id` when
 * well-formed), decides access, and on completion records the audit entry, metrics
 * and logs. Successes log at debug (the hot path stays cheap at the default level);
 * client errors at info; anything that became INTERNAL was logged at error by the
 * mapping. One object per call with its steps as methods (no closure per step), and
 * steps that return a promise only when they must wait.
 */
class CallBookkeeping {
  readonly #context: HandlerContext;
  readonly #deps: PipelineDeps;
  readonly #method: DescMethod;
  readonly #policy: ResolvedPolicy;
  readonly #request: Message;
  readonly #started = performance.now();
  readonly #requestId: string;
  readonly #audit: CallAudit | undefined;
  #stage: Stage = "admitting";

  constructor(
    context: HandlerContext,
    deps: PipelineDeps,
    method: DescMethod,
    policy: ResolvedPolicy,
    request: Message,
  ) {
    this.#context = context;
    this.#deps = deps;
    this.#method = method;
    this.#policy = policy;
    this.#request = request;
    const offered = context.requestHeader.get("x-request-id");
    this.#requestId = offered && requestIdPattern.test(offered) ? offered : randomUUID();
    context.values.set(requestIdKey, this.#requestId);
    context.responseHeader.set("x-request-id", this.#requestId);
    this.#audit =
      deps.audit === undefined || policy.audit === undefined
        ? undefined
        : new CallAudit(deps.audit, context, request, policy.audit);
    if (this.#audit !== undefined) context.values.set(callAuditKey, this.#audit);
  }

  /**
   * The access decision, then protovalidate: who calls and whether their role may
   * call at all, whether they may act on the patient the request names, then the
   * request's rules. A caller without access learns nothing from validation
   * messages, and nothing refused here reaches the handler. Undefined when decided
   * synchronously.
   */
  admit(): Promise<void> | undefined {
    const principal = this.#deps.access.authenticate(this.#policy, this.#context.requestHeader.get("authorization"));
    if (principal instanceof Promise) return principal.then((resolved) => this.#scope(resolved));
    return this.#scope(principal);
  }

  #scope(principal: Principal | undefined): Promise<void> | undefined {
    const { access } = this.#deps;
    this.#context.values.set(principalKey, principal);
    access.permit(this.#policy, principal);
    const actingFor = access.scope(this.#policy, principal, this.#request);
    if (actingFor instanceof Promise) return actingFor.then((resolved) => this.#validate(resolved));
    this.#validate(actingFor);
    return undefined;
  }

  #validate(actingFor: ActingFor | undefined): void {
    this.#context.values.set(actingForKey, actingFor);
    this.#stage = "validating";
    const invalid = this.#deps.validator.check(this.#method.input, this.#request);
    if (invalid) throw invalid;
    this.#stage = "handling";
  }

  /**
   * Records the success of an audited read (a change was recorded by its handler); the
   * answer waits for it. Undefined when there is nothing to wait for.
   */
  succeeded(): Promise<void> | undefined {
    this.#stage = "auditing";
    const audit = this.#audit;
    if (audit !== undefined && !audit.recorded) {
      if (changeActions.has(audit.action)) {
        this.#logger().warn("a change was not audited by its handler; auditing it now");
      }
      return audit.record(AuditOutcome.SUCCESS, "").then(() => this.#streaming());
    }
    this.#streaming();
    return undefined;
  }

  #streaming(): void {
    this.#stage = "streaming";
    if (this.#method.methodKind === "unary") this.finished();
  }

  /** Counts and logs a success (a stream's once it ends). */
  finished(): void {
    const ms = this.#finish("ok");
    const { logger } = this.#deps;
    if (logger.isLevelEnabled("debug")) {
      const rpc = methodPath(this.#method);
      logger.debug({ requestId: this.#requestId, rpc, protocol: this.#context.protocolName, ms }, "rpc ok");
    }
  }

  async failed(thrown: unknown): Promise<ConnectError> {
    const log = this.#logger();
    let error = thrown;
    if (this.#stage === "auditing") {
      // Data must not leave without its audit entry: the caller may retry.
      log.error({ err: error }, "audit entry could not be written");
      error = statusError(
        Code.Unavailable,
        "AUDIT_UNAVAILABLE",
        "The service cannot record this access now. Retry later.",
      );
    }
    const clientError = toClientError(error, log);
    const ms = this.#finish(Code[clientError.code]);
    if (clientError.code !== Code.Internal) {
      log.info({ protocol: this.#context.protocolName, code: Code[clientError.code], ms }, "rpc refused");
    }
    await recordFailure(this.#deps, this.#context, this.#request, this.#policy, this.#stage, clientError, log);
    return clientError;
  }

  /** Records the call's metrics; its duration in ms (one decimal) for the log. */
  #finish(code: string): number {
    const seconds = (performance.now() - this.#started) / 1000;
    this.#deps.metrics.observe(this.#method.name, this.#context.protocolName, code, seconds);
    return Math.round(seconds * 1e4) / 10;
  }

  #logger(): Logger {
    return callLogger(this.#deps, this.#context, this.#method);
  }
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
