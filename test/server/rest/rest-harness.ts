import { create, isMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { methodPath, RpcTable, type RpcEntry } from "../../../src/rpc/rpc-table.ts";
import type { HttpRequest, HttpResponse } from "../../../src/server/http-types.ts";
import { createRestTranscoder, type RestTranscoder } from "../../../src/server/rest/rest-transcoder.ts";

/** What a fake method received. */
export interface Received {
  readonly method: DescMethod;
  readonly request: Message;
  readonly context: HandlerContext;
}

/** Answers a call: a message or its init shape; may throw like a handler. */
export type Responder = (method: DescMethod, request: Message, context: HandlerContext) => unknown;

/** A transcoder served by a real node:http (and node:http2) server on port 0. */
export interface RestHarness {
  readonly transcoder: RestTranscoder;
  readonly baseUrl: string;
  readonly h2Url: string;
  /** Every call that reached a fake method, oldest first. */
  readonly received: Received[];
  /** What `handle` resolved with, per request. */
  readonly handled: boolean[];
  close(): Promise<void>;
}

/** The fallthrough answer, standing in for Connect when REST resolves false. */
export const fallthroughBody = "fell through to connect";

/**
 * Builds an RpcTable over the services whose every method calls `respond`, the way
 * the call pipeline would call a handler; this tests the transcoding layer alone.
 */
export function echoTable(services: readonly DescService[], received: Received[], respond: Responder): RpcTable {
  const entries: RpcEntry[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      const path = methodPath(method);
      if (method.methodKind === "server_streaming") {
        entries.push({ path, service, method, kind: "server_streaming", call: async function* () {} });
        continue;
      }
      const call = async (request: Message, context: HandlerContext): Promise<Message> => {
        received.push({ method, request, context });
        context.responseHeader.set("x-request-id", "test-request-id");
        const result = await respond(method, request, context);
        return isMessage(result, method.output) ? result : create(method.output, result as never);
      };
      entries.push({ path, service, method, kind: "unary", call });
    }
  }
  return new RpcTable(entries);
}

/** Starts the harness; `readMaxBytes` is small so the 413 tests stay fast. */
export async function startRestHarness(
  services: readonly DescService[],
  respond: Responder,
  readMaxBytes = 4096,
): Promise<RestHarness> {
  const received: Received[] = [];
  const handled: boolean[] = [];
  const transcoder = createRestTranscoder(echoTable(services, received, respond), { readMaxBytes });
  const handler = (req: HttpRequest, res: HttpResponse) => {
    transcoder.handle(req, res).then((answered) => {
      handled.push(answered);
      if (answered) return;
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(fallthroughBody);
    });
  };
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  const listen = (server: http.Server | http2.Http2Server) =>
    new Promise<number>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
    );
  const [port1, port2] = [await listen(h1), await listen(h2)];
  return {
    transcoder,
    baseUrl: `http://127.0.0.1:${port1}`,
    h2Url: `http://127.0.0.1:${port2}`,
    received,
    handled,
    close: async () => {
      h1.closeAllConnections();
      await Promise.all([new Promise((r) => h1.close(r)), new Promise((r) => h2.close(r))]);
    },
  };
}

/** Parsed JSON of any shape, which assertions walk freely. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions index into arbitrary JSON
export type AnyJson = any;

/** A fetch that returns status, headers and the parsed JSON (or text) body. */
export async function call(
  url: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: AnyJson }> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const response = await fetch(url, { ...init, headers, body });
  const text = await response.text();
  const isJson = response.headers.get("content-type")?.startsWith("application/json");
  return { status: response.status, headers: response.headers, body: isJson ? JSON.parse(text) : text };
}
