import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import type { HttpRequest, HttpResponse } from "./http-types.ts";

/** Handles one HTTP request, whichever HTTP version carried it. */
export type RequestHandler = (req: HttpRequest, res: HttpResponse) => void;

/** Takes an HTTP/2 stream before Node's compatibility API sees it: true when it serves it itself. */
export type StreamClaim = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

/** Certificate and key in PEM, to serve TLS (HTTP/2 by ALPN, HTTP/1.1 otherwise). */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** A listening endpoint that can drain and close. */
export interface OnePortListener {
  readonly server: net.Server;
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes what is left. */
  close(graceMs: number): Promise<void>;
}

const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * One port for every protocol. With TLS, ALPN picks HTTP/2 or HTTP/1.1. Without it,
 * Node's cleartext HTTP/2 server refuses HTTP/1.1, so a plain TCP server reads the
 * first bytes of each connection and hands it to the HTTP/2 server when they are the
 * HTTP/2 connection preface (prior knowledge, as gRPC clients send), else to the
 * HTTP/1.1 server.
 *
 * `claim`, when given, sees every HTTP/2 stream first (the native gRPC path serves its
 * streams raw); the streams it leaves become `handler`'s requests as usual.
 */
export function createOnePortListener(
  handler: RequestHandler,
  tls?: TlsMaterial,
  claim?: StreamClaim,
): OnePortListener {
  const sessions = new Set<http2.ServerHttp2Session>();
  const h2Options: http2.ServerOptions = { settings: { maxConcurrentStreams: 1000 } };
  const h2 = tls
    ? http2.createSecureServer({ ...h2Options, allowHTTP1: true, cert: tls.cert, key: tls.key }, handler as never)
    : http2.createServer(h2Options, handler as never);
  if (claim !== undefined) claimStreamsFirst(h2, claim);
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const h1 = http.createServer(
    { requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 5_000 },
    handler as never,
  );
  const server = tls ? (h2 as net.Server) : net.createServer((socket) => sniff(socket, h1, h2));
  // Every connection, whichever server ends up owning it, so none outlives the grace period
  // (HTTP/1.1 keep-alive connections on the TLS server are tracked by nobody else).
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve((server.address() as net.AddressInfo).port);
        });
      }),
    close: async (graceMs) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const session of sessions) session.destroy();
        h1.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

/**
 * Puts `claim` in front of the compatibility API. Node implements that API as the
 * server's one "stream" listener (added with the "request" listener, documented as
 * "the 'request' event is emitted for each stream"): this replaces it with a listener
 * that offers each stream to `claim` and hands the rest to it unchanged. Should a
 * Node version register it differently, the server refuses to start rather than
 * answer every stream twice.
 */
function claimStreamsFirst(server: http2.Http2Server | http2.Http2SecureServer, claim: StreamClaim): void {
  const listeners = server.listeners("stream");
  const compat = listeners[0] as ((...args: unknown[]) => void) | undefined;
  if (listeners.length !== 1 || compat === undefined) {
    throw new Error(`node:http2 has ${listeners.length} "stream" listeners where its compatibility API had one`);
  }
  server.removeListener("stream", compat);
  server.on("stream", function onStream(this: unknown, stream, headers, ...rest: unknown[]) {
    if (stream.destroyed || !claim(stream, headers)) compat.call(this, stream, headers, ...rest);
  });
}

/** Routes a cleartext connection by its first bytes. */
function sniff(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const compared = Math.min(seen.length, http2Preface.length);
    const couldBeHttp2 = seen.subarray(0, compared).equals(http2Preface.subarray(0, compared));
    if (couldBeHttp2 && compared < 4) return; // "P", "PR", "PRI" also start POST/PUT/PATCH: wait for more.
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    if (couldBeHttp2) {
      // The HTTP/2 session reads the socket itself; resuming it here would lose data.
      h2.emit("connection", socket as Duplex);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
}
