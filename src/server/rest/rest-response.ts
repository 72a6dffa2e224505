import { toJson, type JsonValue, type Message, type Registry } from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import type { ConnectError } from "@connectrpc/connect";
import * as http2 from "node:http2";
import type { HttpRequest, HttpResponse } from "../http-types.ts";
import type { Route } from "./http-routes.ts";
import { errorBody } from "./rest-errors.ts";

/** Headers a handler or error may not set on a REST answer: framing is ours, and HTTP/2 forbids the hop-by-hop ones. */
const reservedHeaders = new Set([
  "connection",
  "content-length",
  "content-type",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/** The JSON of a response: the whole message, or the `response_body` field of the rule. */
export function responseJson(route: Route, output: Message, registry: Registry): JsonValue {
  const method = route.entry.method;
  const field = route.responseField;
  if (field === undefined) return toJson(method.output, output, { registry });
  if (field.fieldKind === "message") {
    const value = reflect(method.output, output).get(field);
    return toJson(field.message, value.message, { registry });
  }
  // Scalars, lists and maps: read them from the whole message, with defaults, so an empty list is `[]`.
  const whole = toJson(method.output, output, { registry, alwaysEmitImplicit: true }) as Record<string, JsonValue>;
  return whole[field.jsonName] ?? null;
}

/** Writes a JSON answer with the handler's response headers, unless the client is gone. */
export function writeJson(
  req: HttpRequest,
  res: HttpResponse,
  status: number,
  json: JsonValue,
  extra: { headers?: Headers; fixed?: Readonly<Record<string, string>>; closeConnection?: boolean } = {},
): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = JSON.stringify(json);
  const head: Record<string, string> = {};
  extra.headers?.forEach((value, key) => {
    if (!reservedHeaders.has(key) && !key.startsWith(":")) head[key] = value;
  });
  Object.assign(head, extra.fixed);
  head["content-type"] = "application/json";
  head["content-length"] = String(Buffer.byteLength(body));
  // The request body was left unread (RFC 9112 9.6, RFC 9113 8.1). HTTP/1.1 closes the
  // connection after the answer; HTTP/2 resets just this stream with NO_ERROR once the
  // answer is out, so the client stops sending and the stream does not stay half-open.
  const h2Stream = req.httpVersionMajor >= 2 ? (res as http2.Http2ServerResponse).stream : undefined;
  if (extra.closeConnection && h2Stream === undefined) head.connection = "close";
  res.writeHead(status, head);
  res.end(body);
  if (extra.closeConnection) h2Stream?.close(http2.constants.NGHTTP2_NO_ERROR);
}

/** Writes an error in Google's JSON shape, with the handler's headers and the error's metadata. */
export function writeError(
  req: HttpRequest,
  res: HttpResponse,
  error: ConnectError,
  httpStatus: number,
  extra: { headers?: Headers; fixed?: Readonly<Record<string, string>>; closeConnection?: boolean } = {},
): void {
  const headers = new Headers(extra.headers);
  for (const [key, value] of error.metadata) headers.set(key, value);
  writeJson(req, res, httpStatus, errorBody(error, httpStatus), { ...extra, headers });
}

/** The request headers as a Headers object, without HTTP/2 pseudo-headers. */
export function requestHeaders(req: HttpRequest): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (key.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) headers.append(key, item);
    else headers.set(key, value);
  }
  return headers;
}
