import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";

/** What the unary path needs. */
export interface GrpcUnaryOptions {
  /** The session manager the streaming transport uses too: one HTTP/2 connection per sibling. */
  readonly sessionManager: Http2SessionManager;
  /** Deadline of a call without its own `timeoutMs`. */
  readonly defaultTimeoutMs: number;
  /** Largest response message accepted. */
  readonly readMaxBytes: number;
}

type Unary = Transport["unary"];

const userAgent = "telemed-patient-service";

/**
 * Unary gRPC calls straight on an HTTP/2 stream of the shared session: one framed
 * request, one framed answer, the status from the trailers. connect-node's transport
 * runs every unary call through its streaming machinery (async iterables, a web
 * `Headers` per step, several linked abort signals), which cost more than the
 * sibling's handler; this path answers the same way for what callers look at: the
 * message, or a ConnectError with the sibling's code, message and details (read by
 * connect's own `findTrailerError`), DEADLINE_EXCEEDED for a passed deadline,
 * CANCELED for an aborted signal, UNAVAILABLE when the sibling cannot be reached.
 * Compression is not offered, so the sibling answers uncompressed.
 */
export function grpcUnary(options: GrpcUnaryOptions): Unary {
  const { sessionManager, defaultTimeoutMs, readMaxBytes } = options;
  return async (method, signal, timeoutMs, header, input) => {
    const deadlineMs = timeoutMs === undefined ? defaultTimeoutMs : timeoutMs <= 0 ? undefined : timeoutMs;
    if (signal?.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
    const payload = toBinary(method.input, create(method.input, input));
    const frame = Buffer.allocUnsafe(5 + payload.byteLength);
    frame[0] = 0;
    frame.writeUInt32BE(payload.byteLength, 1);
    frame.set(payload, 5);
    const headers: Record<string, string> = {
      "content-type": "application/grpc+proto",
      te: "trailers",
      "user-agent": userAgent,
    };
    if (header !== undefined) {
      new Headers(header).forEach((value, key) => {
        headers[key] = value;
      });
    }
    if (deadlineMs !== undefined) headers["grpc-timeout"] = `${deadlineMs}m`;
    let stream: ClientHttp2Stream;
    try {
      stream = await sessionManager.request("POST", `/${method.parent.typeName}/${method.name}`, headers, {});
    } catch (error) {
      throw ConnectError.from(error, Code.Unavailable);
    }
    const answer = await exchange(stream, frame, deadlineMs, signal, readMaxBytes, sessionManager);
    let message: ReturnType<typeof fromBinary<typeof method.output>>;
    try {
      message = fromBinary(method.output, answer.body);
    } catch (error) {
      throw new ConnectError(`parse binary: ${error instanceof Error ? error.message : String(error)}`, Code.Internal);
    }
    return {
      stream: false,
      service: method.parent,
      method,
      header: toHeaders(answer.headers),
      message,
      trailer: toHeaders(answer.trailers),
    } as UnaryResponse<typeof method.input, typeof method.output>;
  };
}

interface Answer {
  readonly headers: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders;
  readonly body: Uint8Array;
}

/** Sends the framed request and collects the answer; rejects with the call's ConnectError. */
function exchange(
  stream: ClientHttp2Stream,
  frame: Buffer,
  deadlineMs: number | undefined,
  signal: AbortSignal | undefined,
  readMaxBytes: number,
  sessionManager: Http2SessionManager,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let received = 0;
    let failure: ConnectError | undefined;
    const fail = (error: ConnectError) => {
      failure ??= error;
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
    };
    const timer =
      deadlineMs === undefined
        ? undefined
        : setTimeout(() => fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)), deadlineMs);
    const onAbort = () => fail(ConnectError.from(signal?.reason, Code.Canceled));
    signal?.addEventListener("abort", onAbort, { once: true });
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (chunk: Buffer) => {
      sessionManager.notifyResponseByteRead(stream);
      received += chunk.byteLength;
      if (received > readMaxBytes + 5) {
        fail(
          new ConnectError(
            `message size is larger than configured readMaxBytes ${readMaxBytes}`,
            Code.ResourceExhausted,
          ),
        );
      } else {
        chunks.push(chunk);
      }
    });
    stream.on("error", (error: Error) => fail(streamError(error, stream.rstCode)));
    stream.on("close", () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (failure !== undefined) return reject(failure);
      try {
        resolve({ headers, trailers, body: unframe(headers, trailers, chunks, stream.rstCode) });
      } catch (error) {
        reject(error);
      }
    });
    stream.end(frame);
  });
}

/** The one message of a finished call, or the call's error (trailers first, then a trailers-only header). */
function unframe(
  headers: IncomingHttpHeaders,
  trailers: IncomingHttpHeaders,
  chunks: readonly Buffer[],
  rstCode: number,
): Uint8Array {
  const status = Number(headers[":status"] ?? 0);
  if (status !== 200) {
    if (status === 0) throw resetError(rstCode);
    throw new ConnectError(`HTTP ${status}`, status === 503 ? Code.Unavailable : Code.Unknown);
  }
  const statusOf = trailers["grpc-status"] ?? headers["grpc-status"];
  if (statusOf === undefined) throw new ConnectError("protocol error: missing status", Code.Internal);
  if (statusOf !== "0") {
    const error = findTrailerError(toHeaders("grpc-status" in trailers ? trailers : headers));
    throw error ?? new ConnectError("protocol error: missing status", Code.Internal);
  }
  const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  if (body.byteLength < 5)
    throw new ConnectError("protocol error: missing output message for unary method", Code.Unimplemented);
  if (body[0] !== 0) throw new ConnectError("protocol error: compressed or invalid frame", Code.Internal);
  const length = body.readUInt32BE(1);
  if (body.byteLength !== 5 + length) {
    throw new ConnectError("protocol error: received extra or partial output for unary method", Code.Unimplemented);
  }
  return body.subarray(5);
}

function streamError(error: Error, rstCode: number): ConnectError {
  const code = (error as { code?: string }).code;
  if (code === "ERR_HTTP2_STREAM_ERROR") return resetError(rstCode);
  return ConnectError.from(error, Code.Unavailable);
}

function resetError(rstCode: number): ConnectError {
  const text = `http/2 stream closed with error code 0x${rstCode.toString(16)}`;
  switch (rstCode) {
    case constants.NGHTTP2_CANCEL:
      return new ConnectError(text, Code.Canceled);
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return new ConnectError(text, Code.ResourceExhausted);
    case constants.NGHTTP2_INADEQUATE_SECURITY:
    case constants.NGHTTP2_HTTP_1_1_REQUIRED:
      return new ConnectError(text, Code.PermissionDenied);
    case constants.NGHTTP2_REFUSED_STREAM:
    case constants.NGHTTP2_NO_ERROR:
      return new ConnectError(text, Code.Unavailable);
    default:
      return new ConnectError(text, Code.Internal);
  }
}

function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const key in raw) {
    if (key.startsWith(":")) continue;
    const value = raw[key];
    if (Array.isArray(value)) for (const item of value) headers.append(key, item);
    else if (value !== undefined) headers.set(key, value);
  }
  return headers;
}
