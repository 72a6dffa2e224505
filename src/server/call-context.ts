import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { peerValues } from "./peer-values.ts";
import type { IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import type { HttpRequest, HttpResponse } from "./http-types.ts";

/** Why a call's signal fired after it completed normally; one shared, cheap reason. */
const completed = new ConnectError("call completed", Code.Canceled);
const clientClosed = new ConnectError("client closed the stream", Code.Canceled);
const shuttingDown = new ConnectError("server is shutting down", Code.Unavailable);

/** A handler context and the function that releases what it holds. */
export interface CallContext {
  readonly context: HandlerContext;
  /** Aborts the signal (Connect's semantics: it fires when a call ends) and drops the listeners. */
  release(): void;
}

/** The method a native call invokes (an RpcTable entry fits). */
export interface CallTarget {
  readonly service: DescService;
  readonly method: DescMethod;
}

/** Builds the context of one call; `onAbort` runs once if a deadline, the client or shutdown ends it first. */
export type CreateCallContext = (
  protocolName: "grpc" | "connect",
  target: CallTarget,
  req: HttpRequest,
  res: HttpResponse,
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
 * The client going away is seen on the response: over HTTP/1.1 the request emits
 * "close" as soon as its body is read, the response only when the exchange ends.
 */
export function createCallContexts(shutdownSignal: AbortSignal): CreateCallContext {
  const live = new Set<(reason: ConnectError) => void>();
  shutdownSignal.addEventListener("abort", () => {
    for (const abort of live) abort(shuttingDown);
  });

  return (protocolName, target, req, res, timeoutMs, onAbort) => {
    let reason: ConnectError | undefined;
    let controller: AbortController | undefined;
    const abort = (why: ConnectError) => {
      if (reason !== undefined) return;
      reason = why;
      controller?.abort(why);
      onAbort(why);
    };
    const onClose = () => abort(clientClosed);
    res.once("close", onClose);
    // A call that arrives after shutdown began is still served, as connect-node serves it.
    live.add(abort);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeoutMs);
    const context: HandlerContext = {
      service: target.service,
      method: target.method,
      protocolName,
      requestMethod: "POST",
      // Absolute, as Connect gives it.
      get url() {
        return requestUrl(req);
      },
      get signal() {
        if (controller === undefined) {
          controller = new AbortController();
          if (reason !== undefined) controller.abort(reason);
        }
        return controller.signal;
      },
      timeoutMs: deadline === undefined ? noTimeout : () => deadline - Date.now(),
      requestHeader: new IncomingHeaders(req.headers) as unknown as Headers,
      responseHeader: new Headers(),
      responseTrailer: new Headers(),
      values: peerValues(req),
    };
    return {
      context,
      release() {
        if (timer) clearTimeout(timer);
        res.off("close", onClose);
        live.delete(abort);
        if (reason !== undefined) return;
        reason = completed;
        controller?.abort(completed);
      },
    };
  };
}

const noTimeout = () => undefined;
/** A header name get() can look up in Node's (lower-cased) object without Headers' own checks. */
const plainName = /^[A-Za-z0-9-]+$/;

/** Headers' methods as methods (its type declares them as properties, which a subclass cannot override). */
interface HeadersMethods {
  get(name: string): string | null;
  has(name: string): boolean;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  delete(name: string): void;
  getSetCookie(): string[];
  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}
const HeadersBase = Headers as unknown as new () => HeadersMethods;

/**
 * Request metadata as Headers, without HTTP/2 pseudo-headers. get() and has() read
 * Node's header object; anything else first copies it into the Headers: the pipeline
 * reads a header or two per call, and copying all of them (name checks, sorted
 * inserts) cost more than that.
 */
class IncomingHeaders extends HeadersBase {
  #raw: IncomingHttpHeaders | undefined;

  constructor(raw: IncomingHttpHeaders) {
    super();
    this.#raw = raw;
  }

  #fill(): void {
    const raw = this.#raw;
    if (raw === undefined) return;
    this.#raw = undefined;
    for (const [key, value] of Object.entries(raw)) {
      if (key.charCodeAt(0) === 58 /* ":" */ || value === undefined) continue;
      super.set(key, Array.isArray(value) ? value.join(", ") : value);
    }
  }

  override get(name: string): string | null {
    const raw = this.#raw;
    if (raw === undefined || !plainName.test(name)) {
      this.#fill();
      return super.get(name);
    }
    const value = raw[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
  }

  override has(name: string): boolean {
    return this.get(name) !== null;
  }

  override set(name: string, value: string): void {
    this.#fill();
    super.set(name, value);
  }

  override append(name: string, value: string): void {
    this.#fill();
    super.append(name, value);
  }

  override delete(name: string): void {
    this.#fill();
    super.delete(name);
  }

  override getSetCookie(): string[] {
    this.#fill();
    return super.getSetCookie();
  }

  override forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#fill();
    super.forEach(callback, thisArg);
  }

  override keys(): IterableIterator<string> {
    this.#fill();
    return super.keys();
  }

  override values(): IterableIterator<string> {
    this.#fill();
    return super.values();
  }

  override entries(): IterableIterator<[string, string]> {
    this.#fill();
    return super.entries();
  }

  override [Symbol.iterator](): IterableIterator<[string, string]> {
    this.#fill();
    return super.entries();
  }
}

function requestUrl(req: HttpRequest): string {
  const scheme = (req.socket as TLSSocket | null)?.encrypted ? "https" : "http";
  const authority = "authority" in req ? req.authority : req.headers.host;
  return `${scheme}://${authority ?? "localhost"}${req.url ?? "/"}`;
}
