import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

/** A request from the HTTP/1.1 or the HTTP/2 server. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;

/**
 * A response of either server, with the methods both share typed once (the same
 * shape connect-node's adapter accepts).
 */
export type HttpResponse = (
  | Omit<ServerResponse, "write" | "writeHead">
  | Omit<Http2ServerResponse, "write" | "writeHead">
) & {
  write(chunk: string | Uint8Array, callback?: (err: Error | null | undefined) => void): boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
};

/**
 * A plain HTTP route on the service port, outside the RPC pipeline: for callers that
 * speak neither gRPC nor REST transcoding, such as a payment provider's signed webhook.
 * The route authenticates its caller itself.
 */
export interface PlainHttpRoute {
  readonly method: "POST" | "GET";
  /** The exact path, without a query string. */
  readonly path: string;
  handle(req: HttpRequest, res: HttpResponse): Promise<void>;
}

/** Sends a complete small response. */
export function sendBody(res: HttpResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType });
  res.end(body);
}
