import { type DescMethod, fromBinary, fromJsonString, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Compression, compressionNegotiate, mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  contentTypeUnaryProto,
  contentTypeUnaryRegExp,
  errorToJsonBytes,
  parseTimeout,
  protocolVersion,
} from "@connectrpc/connect/protocol-connect";
import type { ServerResponse } from "node:http";
import type * as http2 from "node:http2";
import type { RpcEntry, RpcTable } from "../rpc/rpc-table.ts";
import { type CreateCallContext, compatSource } from "./call-context.ts";
import type { HttpRequest, HttpResponse } from "./http-types.ts";
import { binaryOf, jsonOf } from "./frozen-encodings.ts";
import { resetAfterAnswer } from "./reset-after-answer.ts";

/** Options of the native Connect path. */
export interface ConnectUnaryOptions {
  /** Largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
  /** Builds each call's context (deadline, client going away, shutdown). */
  readonly createContext: CreateCallContext;
  /** Compressions offered for answers: the list connect-node is given, so both answer alike. */
  readonly acceptCompression: readonly Compression[];
}

/** connect-node's defaults, which the server keeps: answers from 1 KiB are compressed if the client accepts it. */
const compressMinBytes = 1024;
/** connect-es ignores unknown JSON fields by default (plain protobuf JSON rejects them). */
const jsonReadOptions = { ignoreUnknownFields: true };
/** Longer deadlines overflow Node's timers; connect-node keeps whatever it does with them. */
const maxTimerMs = 2 ** 31 - 1;
/** Answering before the request body is read: how much more HTTP/1.1 reads and discards, as connect-node. */
const maxDrainBytes = 256 * 1024;
const closeDelayMs = 500;
const textDecoder = new TextDecoder();
type Head = Record<string, string | string[]>;

/**
 * The hot path for unary Connect calls: POST of `application/json` or `application/proto`,
 * uncompressed, over HTTP/1.1 or HTTP/2. connect-node serves them correctly, but its
 * general pipeline (universal request and response, async iterables, linked abort
 * signals) costs more per call than the handler does (README, "Performance"). This path
 * reads the body, calls the RpcTable entry and writes the answer itself, and reuses
 * Connect's own helpers for what must match the protocol exactly: content types,
 * timeout parsing, the HTTP status of a code, the JSON error body, protocol headers,
 * response compression. Everything else (GET, compressed requests, a body announced
 * over `readMaxBytes`, unknown protocol versions) goes to connect-node.
 */
export function createConnectUnaryHandler(table: RpcTable, options: ConnectUnaryOptions) {
  /** Answers the call and returns true, or returns false to let connect-node take it. */
  return function handle(req: HttpRequest, res: HttpResponse): boolean {
    if (req.method !== "POST") return false;
    const entry = table.get(req.url ?? "");
    if (entry?.kind !== "unary") return false;
    const { headers } = req;
    const contentType = headers["content-type"];
    if (contentType === undefined || !contentTypeUnaryRegExp.test(contentType)) return false;
    const encoding = headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const version = headers["connect-protocol-version"];
    if (version !== undefined && version !== protocolVersion) return false;
    // connect-node refuses an announced oversize body without reading it.
    const length = lengthHint(headers["content-length"]);
    if (length !== undefined && length > options.readMaxBytes) return false;
    const timeout = parseTimeout(headerValue(headers["connect-timeout-ms"]), Number.MAX_SAFE_INTEGER);
    if (timeout.timeoutMs !== undefined && timeout.timeoutMs > maxTimerMs) return false;
    const call: Call = { entry, binary: /proto$/i.test(contentType), length, timeoutMs: timeout.timeoutMs };
    serve(call, timeout.error, req, res, options);
    return true;
  };
}

interface Call {
  readonly entry: Extract<RpcEntry, { kind: "unary" }>;
  readonly binary: boolean;
  /** The body size the client announced (Content-Length), if any. */
  readonly length: number | undefined;
  readonly timeoutMs: number | undefined;
}

function serve(
  call: Call,
  timeoutError: ConnectError | undefined,
  req: HttpRequest,
  res: HttpResponse,
  options: ConnectUnaryOptions,
): void {
  const { entry, binary } = call;
  // A deadline, the client going away or shutdown answers at once; the handler's late result is dropped.
  const native = options.createContext("connect", entry, compatSource(req, res), call.timeoutMs, (why) =>
    finish(undefined, why),
  );
  const { context } = native;
  const h2Stream = req.httpVersionMajor === 2 ? (res as unknown as http2.Http2ServerResponse).stream : undefined;
  let answered = false;
  let ended = false;
  /** An answer decided before the HTTP/1.1 body was read, waiting for the rest of it to drain. */
  let waiting: ((closeConnection: boolean) => void) | undefined;
  let drained = 0;

  const write = (status: number, head: Head, body: Uint8Array) => (closeConnection: boolean) => {
    if (h2Stream ? h2Stream.destroyed : (res as unknown as ServerResponse).destroyed) return;
    if (closeConnection) closeAfterAnswer(res as unknown as ServerResponse, head);
    head["content-length"] = String(body.byteLength);
    res.writeHead(status, head);
    res.end(body);
  };
  const deliver = (status: number, head: Head, body: Uint8Array) => {
    const send = write(status, head, body);
    if (ended) return send(false);
    // The body is not read yet (a refusal): as connect-node, HTTP/2 resets the stream once
    // the answer is out, HTTP/1.1 reads on (up to a limit) to keep the connection usable.
    if (h2Stream) {
      resetAfterAnswer(h2Stream);
      return send(false);
    }
    waiting = send;
  };
  const finish = (output: Message | undefined, thrown: unknown) => {
    if (answered) return;
    answered = true;
    native.release();
    let status = 200;
    let body: Uint8Array;
    const head: Head = { "content-type": binary ? contentTypeUnaryProto : contentTypeUnaryJson };
    try {
      if (thrown !== undefined) throw thrown;
      body = encode(entry.method, binary, output as Message);
    } catch (e) {
      const error =
        e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
      status = codeToHttpStatus(error.code);
      if (!error.isWireError) mergeNonProtocolHeaders(context.responseHeader, error.metadata);
      body = errorBody(error);
    }
    context.responseHeader.forEach((value, key) => {
      appendHeader(head, key, value);
    });
    if (status !== 200) head["content-type"] = contentTypeUnaryJson;
    context.responseTrailer.forEach((value, key) => {
      appendHeader(head, `trailer-${key}`, value);
    });
    const compression = body.byteLength >= compressMinBytes ? negotiate(options, req) : null;
    if (!compression) return deliver(status, head, body);
    compression.compress(body).then(
      (compressed) => {
        head["content-encoding"] = compression.name;
        deliver(status, head, compressed);
      },
      () => deliver(status, head, body),
    );
  };
  if (timeoutError) finish(undefined, timeoutError);

  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    if (answered) {
      drained += chunk.length;
      if (waiting && drained > maxDrainBytes) {
        req.pause();
        waiting(true);
        waiting = undefined;
      }
      return;
    }
    size += chunk.length;
    if (call.length !== undefined && size > call.length) {
      finish(undefined, promisedError(call.length, size));
    } else if (size > options.readMaxBytes) {
      const message = `message size is larger than configured readMaxBytes ${options.readMaxBytes}`;
      finish(undefined, new ConnectError(message, Code.ResourceExhausted));
    } else {
      chunks.push(chunk);
    }
  });
  req.once("end", () => {
    ended = true;
    if (waiting) {
      waiting(false);
      waiting = undefined;
    }
    if (answered) return;
    if (call.length !== undefined && size < call.length) return finish(undefined, promisedError(call.length, size));
    let input: Message;
    try {
      input = decode(entry.method, binary, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    } catch (error) {
      return finish(undefined, error);
    }
    entry.call(input, context).then(
      (output) => finish(output, undefined),
      (error: unknown) => finish(undefined, error),
    );
  });
}

/**
 * The request message, decoded as connect-node does, except that undecodable binary is
 * INVALID_ARGUMENT (connect-node says INTERNAL): a client's mistake is never INTERNAL.
 */
function decode(method: DescMethod, binary: boolean, bytes: Uint8Array): Message {
  if (binary) {
    try {
      return fromBinary(method.input, bytes);
    } catch (e) {
      throw new ConnectError(`parse binary: ${e instanceof Error ? e.message : String(e)}`, Code.InvalidArgument);
    }
  }
  try {
    return fromJsonString(method.input, textDecoder.decode(bytes), jsonReadOptions);
  } catch (e) {
    throw ConnectError.from(e, Code.InvalidArgument);
  }
}

/** The response message, encoded as connect-node does. */
function encode(method: DescMethod, binary: boolean, output: Message): Uint8Array {
  if (binary) {
    try {
      return binaryOf(method.output, output);
    } catch (e) {
      throw new ConnectError(`serialize binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
    }
  }
  try {
    return jsonOf(method.output, output);
  } catch (e) {
    throw ConnectError.from(e, Code.Internal);
  }
}

function errorBody(error: ConnectError): Uint8Array {
  try {
    return errorToJsonBytes(error, undefined);
  } catch {
    return Buffer.from('{"code":"internal","message":"failed to serialize Connect Error"}');
  }
}

function negotiate(options: ConnectUnaryOptions, req: HttpRequest): Compression | null {
  const accepted = headerValue(req.headers["accept-encoding"]);
  if (accepted === null) return null;
  return compressionNegotiate(options.acceptCompression as Compression[], null, accepted, "Accept-Encoding").response;
}

function promisedError(promised: number, received: number): ConnectError {
  return new ConnectError(`protocol error: promised ${promised} bytes, received ${received}`, Code.InvalidArgument);
}

/** As connect-node turns response Headers into Node's: lower-case names, repeated names as arrays. */
function appendHeader(head: Head, key: string, value: string): void {
  const existing = head[key];
  if (existing === undefined || key === "content-type") head[key] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else head[key] = [existing, value];
}

/**
 * HTTP/1.1 with part of the body unread: close the connection after the answer. Closing
 * at once could make the client's TCP stack drop the answer, so half-close first and
 * close fully after a delay, as connect-node does.
 */
function closeAfterAnswer(res: ServerResponse, head: Head): void {
  head.connection = "close";
  const socket = res.socket;
  if (socket === null) return;
  socket.destroySoon = () => {
    socket.end(() => setTimeout(() => socket.destroy(), closeDelayMs).unref());
  };
}

/** Content-Length as connect-node reads it: a safe non-negative integer, else no hint. */
function lengthHint(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number.parseInt(value, 10);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function headerValue(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}
