import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type HandlerContext } from "@connectrpc/connect";
import type { Http2ServerRequest } from "node:http2";

/** Why a call's signal fired after it completed normally; one shared, cheap reason. */
const completed = new ConnectError("call completed", Code.Canceled);
const clientClosed = new ConnectError("client closed the stream", Code.Canceled);
const shuttingDown = new ConnectError("server is shutting down", Code.Unavailable);

/** A handler context and the function that releases what it holds. */
export interface GrpcCallContext {
  readonly context: HandlerContext;
  /** Aborts the signal (Connect's semantics: it fires when a call ends) and drops the listeners. */
  release(): void;
}

/**
 * The HandlerContext of one native gRPC call: the same shape Connect gives handlers,
 * built with one AbortController and no linked signals, because Connect's general
 * `createHandlerContext` costs several EventTarget listeners and a DOMException per call
 * on the hottest path of the service.
 */
export function createGrpcCallContext(
  service: DescService,
  method: DescMethod,
  req: Http2ServerRequest,
  timeoutMs: number | undefined,
  shutdownSignal: AbortSignal,
): GrpcCallContext {
  const controller = new AbortController();
  const abort = (reason: ConnectError) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onClose = () => abort(clientClosed);
  const onShutdown = () => abort(shuttingDown);
  req.once("close", onClose);
  shutdownSignal.addEventListener("abort", onShutdown, { once: true });
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeoutMs);
  const context: HandlerContext = {
    service,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: req.url,
    signal: controller.signal,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    requestHeader: incomingHeaders(req),
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values: createContextValues(),
  };
  return {
    context,
    release() {
      if (timer) clearTimeout(timer);
      req.off("close", onClose);
      shutdownSignal.removeEventListener("abort", onShutdown);
      abort(completed);
    },
  };
}

/** Request metadata as Headers, without HTTP/2 pseudo-headers. */
function incomingHeaders(req: Http2ServerRequest): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (key.charCodeAt(0) === 58 /* ":" */ || value === undefined) continue;
    headers.set(key, Array.isArray(value) ? value.join(", ") : value);
  }
  return headers;
}
