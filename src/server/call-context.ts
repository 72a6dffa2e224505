import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import type { EventEmitter } from "node:events";
import type { IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import type { HttpRequest, HttpResponse } from "./http-types.ts";
import { LazyHeaders } from "./lazy-headers.ts";
import { addressValues } from "./peer-values.ts";

/** Why a call's signal fired after it completed normally; one shared, cheap reason. */
const completed = new ConnectError("call completed", Code.Canceled);
const clientClosed = new ConnectError("client closed the stream", Code.Canceled);
const shuttingDown = new ConnectError("server is shutting down", Code.Unavailable);

/** A handler context and the function that releases what it holds (one object). */
export interface CallContext {
  readonly context: HandlerContext;
  /** Aborts the signal (Connect's semantics: it fires when a call ends) and drops the listeners; a method of the object. */
  release(): void;
}

/** The method a native call invokes (an RpcTable entry fits). */
export interface CallTarget {
  readonly service: DescService;
  readonly method: DescMethod;
}

/**
 * What a native call's context reads of its transport: the same for a raw HTTP/2
 * stream and for Node's request/response pair, so both paths share one context builder.
 */
export interface CallSource {
  /** Request headers as Node gives them: lower-case names, HTTP/2 pseudo-headers included. */
  readonly headers: IncomingHttpHeaders;
  /** Emits "close" when the exchange ends; before the answer is sent, that means the client went away. */
  readonly closer: EventEmitter;
  /** The client's IP address as the socket saw it; "" when unknown. */
  readonly remoteAddress: string;
  /** Whether the connection is TLS, for the absolute URL. */
  readonly encrypted: boolean;
  /** The request path with its query. */
  readonly path: string;
}

/** The CallSource of a request of Node's HTTP/1.1 or HTTP/2 compatibility API. */
export function compatSource(req: HttpRequest, res: HttpResponse): CallSource {
  return {
    headers: req.headers,
    closer: res as unknown as EventEmitter,
    remoteAddress: req.socket?.remoteAddress ?? "",
    encrypted: (req.socket as TLSSocket | null)?.encrypted === true,
    path: req.url ?? "/",
  };
}

/** Builds the context of one call; `onAbort` runs once if a deadline, the client or shutdown ends it first. */
export type CreateCallContext = (
  protocolName: "grpc" | "connect",
  target: CallTarget,
  source: CallSource,
  timeoutMs: number | undefined,
  onAbort: (reason: ConnectError) => void,
) => CallContext;

/**
 * The HandlerContexts of the native unary paths (gRPC and Connect): the same shape
 * Connect gives handlers, built lazily, because Connect's general `createHandlerContext`
 * (linked abort signals, EventTarget listeners, a DOMException, every request header
 * copied into a Headers) costs more than a GetPatient handler on the hottest path of
 * the service. The AbortSignal exists only once something reads it; the paths learn of
 * an abort through `onAbort`; one shutdown listener serves every call in flight.
 * The client going away is seen on the response (or the raw stream): over HTTP/1.1 the
 * request emits "close" as soon as its body is read, the response only when the
 * exchange ends.
 */
export function createCallContexts(shutdownSignal: AbortSignal): CreateCallContext {
  const live = new Set<NativeCallContext>();
  shutdownSignal.addEventListener("abort", () => {
    for (const call of live) call.abort(shuttingDown);
  });
  return (protocolName, target, source, timeoutMs, onAbort) =>
    new NativeCallContext(protocolName, target, source, timeoutMs, onAbort, live);
}

const noTimeout = () => undefined;

/**
 * One call's HandlerContext and its bookkeeping in one object: a class, so each call
 * allocates its fields and one closure (the "close" listener), where an object literal
 * with getters and a closure per hook cost several times that (and its garbage is most
 * of what the young-generation GC copies under load).
 */
class NativeCallContext implements HandlerContext, CallContext {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly protocolName: string;
  readonly requestMethod = "POST";
  readonly timeoutMs: () => number | undefined;
  readonly requestHeader: Headers;
  readonly responseHeader = new LazyHeaders() as unknown as Headers;
  readonly responseTrailer = new LazyHeaders() as unknown as Headers;
  readonly values: ContextValues;
  readonly #source: CallSource;
  readonly #onAbort: (reason: ConnectError) => void;
  readonly #live: Set<NativeCallContext>;
  readonly #onClose: () => void;
  readonly #timer: NodeJS.Timeout | undefined;
  #reason: ConnectError | undefined;
  #controller: AbortController | undefined;

  constructor(
    protocolName: string,
    target: CallTarget,
    source: CallSource,
    timeoutMs: number | undefined,
    onAbort: (reason: ConnectError) => void,
    live: Set<NativeCallContext>,
  ) {
    this.service = target.service;
    this.method = target.method;
    this.protocolName = protocolName;
    this.requestHeader = new LazyHeaders(source.headers) as unknown as Headers;
    this.values = addressValues(source.remoteAddress);
    this.#source = source;
    this.#onAbort = onAbort;
    this.#live = live;
    this.#onClose = () => this.abort(clientClosed);
    source.closer.on("close", this.#onClose);
    // A call that arrives after shutdown began is still served, as connect-node serves it.
    live.add(this);
    if (timeoutMs === undefined) {
      this.timeoutMs = noTimeout;
      this.#timer = undefined;
    } else {
      const deadline = Date.now() + timeoutMs;
      this.timeoutMs = () => deadline - Date.now();
      this.#timer = setTimeout(
        () => this.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
  }

  get context(): HandlerContext {
    return this;
  }

  /** Absolute, as Connect gives it. */
  get url(): string {
    return requestUrl(this.#source);
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#reason !== undefined) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Ends the call early (deadline, client gone, shutdown): once, and only before `release`. */
  abort(why: ConnectError): void {
    if (this.#reason !== undefined) return;
    this.#reason = why;
    this.#controller?.abort(why);
    this.#onAbort(why);
  }

  release(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#source.closer.off("close", this.#onClose);
    this.#live.delete(this);
    if (this.#reason !== undefined) return;
    this.#reason = completed;
    this.#controller?.abort(completed);
  }
}

function requestUrl(source: CallSource): string {
  const authority = source.headers[":authority"] ?? source.headers.host;
  return `${source.encrypted ? "https" : "http"}://${authority ?? "localhost"}${source.path}`;
}
