import { cors } from "@connectrpc/connect";
import type { HttpRequest, HttpResponse } from "./http-types.ts";

const allowedMethods = [...new Set([...cors.allowedMethods, "GET", "POST", "PUT", "PATCH", "DELETE"])].join(", ");
const allowedHeaders = [...cors.allowedHeaders, "Authorization", "X-Request-Id"].join(", ");
const exposedHeaders = [...cors.exposedHeaders, "X-Request-Id"].join(", ");

/**
 * CORS for browsers (gRPC-Web, Connect and REST) from an explicit list of origins.
 * Returns a function that adds the headers for an allowed origin and answers a
 * preflight itself (true), or does nothing (false). Other origins get no CORS
 * headers, so browsers keep their responses from the page.
 */
export function createCors(allowedOrigins: readonly string[]): (req: HttpRequest, res: HttpResponse) => boolean {
  const allowed = new Set(allowedOrigins);
  return (req, res) => {
    const origin = req.headers.origin;
    if (allowed.size === 0 || typeof origin !== "string") return false;
    res.setHeader("vary", "Origin");
    if (!allowed.has(origin)) return false;
    res.setHeader("access-control-allow-origin", origin);
    res.setHeader("access-control-expose-headers", exposedHeaders);
    if (req.method !== "OPTIONS" || !req.headers["access-control-request-method"]) return false;
    res.setHeader("access-control-allow-methods", allowedMethods);
    res.setHeader("access-control-allow-headers", allowedHeaders);
    res.setHeader("access-control-max-age", "7200");
    res.writeHead(204);
    res.end();
    return true;
  };
}
