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

/** Sends a complete small response. */
export function sendBody(res: HttpResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType });
  res.end(body);
}
