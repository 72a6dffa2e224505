import type { RpcMetrics } from "../observability/metrics.ts";
import {
  sendBody,
  type HttpRequest as AnyRequest,
  type HttpResponse as AnyResponse,
  type PlainHttpRoute,
} from "./http-types.ts";
import type { RequestHandler } from "./one-port-listener.ts";

/** The handlers a request can end up in, in the order they are tried. */
export interface DispatchTargets {
  readonly metrics: RpcMetrics;
  /** Native unary Connect (POST, JSON or binary, uncompressed); false when the call is not one it serves. */
  readonly connectUnary: (req: AnyRequest, res: AnyResponse) => boolean;
  /** REST transcoding; resolves false when no REST route matches. */
  readonly rest: (req: AnyRequest, res: AnyResponse) => Promise<boolean>;
  /** connect-node: Connect, gRPC and gRPC-Web; answers unknown paths itself. */
  readonly connect: (req: AnyRequest, res: AnyResponse) => void;
  /** The JWKS document (JSON) sibling services verify access tokens with. */
  readonly jwks: string;
  /** Plain HTTP liveness/readiness for load balancers that do not speak gRPC health. */
  readonly ready: () => boolean;
  /** Adds CORS headers; true when it answered a preflight. */
  readonly cors: (req: AnyRequest, res: AnyResponse) => boolean;
  /** Plain HTTP routes (webhooks), by `METHOD path`. */
  readonly plainRoutes?: ReadonlyMap<string, PlainHttpRoute>;
}

/**
 * Sends each request to the transport that owns it (unary gRPC over HTTP/2 was taken
 * as a raw stream before it became a request: grpc-unary.ts). RPC paths (`/package.Service/Method`)
 * never match a REST template, so they skip the REST route table.
 */
export function createDispatcher(targets: DispatchTargets): RequestHandler {
  return (req, res) => {
    const url = req.url ?? "/";
    if (targets.cors(req, res)) return;
    if (isRpcPath(url)) {
      if (targets.connectUnary(req, res)) return;
      return targets.connect(req, res);
    }
    if (req.method === "GET" && (url === "/metrics" || url === "/healthz" || url === "/readyz" || url === jwksPath)) {
      return void serveOperations(url, targets, res);
    }
    const plain = targets.plainRoutes?.get(`${req.method} ${url.split("?")[0]}`);
    if (plain !== undefined) {
      plain.handle(req, res).catch(() => {
        if (!res.headersSent) sendBody(res, 500, "text/plain", "internal error\n");
      });
      return;
    }
    targets.rest(req, res).then(
      (answered) => {
        if (!answered) targets.connect(req, res);
      },
      () => {
        if (!res.headersSent) sendBody(res, 500, "text/plain", "internal error\n");
      },
    );
  };
}

/** Where OpenID-style verifiers look for keys. */
const jwksPath = "/.well-known/jwks.json";

/**
 * `/package.Service/Method`: the first path segment of an RPC holds a dot, a REST path's
 * never does; a package name never starts with one (`/.well-known/…` is not an RPC).
 */
function isRpcPath(url: string): boolean {
  const end = url.indexOf("/", 1);
  return url[1] !== "." && url.slice(1, end === -1 ? undefined : end).includes(".");
}

async function serveOperations(url: string, targets: DispatchTargets, res: AnyResponse): Promise<void> {
  if (url === jwksPath) {
    res.setHeader("cache-control", "public, max-age=300");
    return sendBody(res, 200, "application/jwk-set+json", targets.jwks);
  }
  if (url === "/metrics") {
    const { contentType, body } = await targets.metrics.render();
    return sendBody(res, 200, contentType, body);
  }
  const ok = url === "/healthz" || targets.ready();
  sendBody(res, ok ? 200 : 503, "text/plain", ok ? "ok\n" : "not ready\n");
}
