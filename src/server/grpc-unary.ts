import { fromBinary, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Http2Session, IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { RpcEntry, RpcTable } from "../rpc/rpc-table.ts";
import type { CallContext, CallSource, CreateCallContext } from "./call-context.ts";
import type { LazyHeaders } from "./lazy-headers.ts";
import type { StreamClaim } from "./one-port-listener.ts";
import { binaryOf } from "./frozen-encodings.ts";
import { resetAfterAnswer } from "./reset-after-answer.ts";

/** Options of the native gRPC path. */
export interface GrpcUnaryOptions {
  /** Largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
  /** Builds each call's context (deadline, client going away, shutdown). */
  readonly createContext: CreateCallContext;
}

const maxTimeoutMs = 2 ** 31 - 1;
const grpcContentType = /^application\/grpc(\+proto)?(;.*)?$/i;
const responseOptions = { waitForTrailers: true };

/**
 * The hot path for unary gRPC over HTTP/2: plain `proto` framing, no compression.
 * connect-node serves gRPC correctly but its general pipeline (async iterables,
 * several allocations per message) costs ~6x the time of @grpc/grpc-js per call
 * (README, "Performance"); grpc-js cannot share one port with Connect and gRPC-Web
 * per stream. So this path does the framing itself and reuses Connect's own helpers
 * for what must match the protocol exactly: timeout parsing and the status trailers
 * (grpc-status, percent-encoded grpc-message, grpc-status-details-bin).
 *
 * It serves the raw HTTP/2 stream, as grpc-js does, not Node's compatibility
 * request and response: those two objects (a Readable fed from the stream, header
 * bookkeeping, their listeners) cost more per call than the framing itself
 * (README, "Performance"). Everything else (streaming, gRPC+JSON, compressed
 * requests, `expect` headers) is left to the compatibility API and connect-node.
 */
export function createGrpcUnaryHandler(table: RpcTable, options: GrpcUnaryOptions): StreamClaim {
  return function claim(stream, headers) {
    if (headers[":method"] !== "POST" || headers.expect !== undefined) return false;
    const entry = table.get(headers[":path"] ?? "");
    if (entry?.kind !== "unary") return false;
    const contentType = headers["content-type"] ?? "";
    if (contentType !== "application/grpc" && !grpcContentType.test(contentType)) return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    serve(entry, stream, headers, options);
    return true;
  };
}

function serve(
  entry: Extract<RpcEntry, { kind: "unary" }>,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: GrpcUnaryOptions,
): void {
  const timeout = parseTimeout(headerValue(headers["grpc-timeout"]), maxTimeoutMs);
  new GrpcUnaryCall(entry, stream, streamSource(stream, headers), timeout.timeoutMs, options).start(timeout.error);
}

/**
 * One call on one stream: reads the request, runs the RpcTable entry, answers. A class
 * with its listeners as fields, so a call allocates little beyond its context; once it
 * has answered it lets go of the stream's listeners.
 */
class GrpcUnaryCall {
  readonly #entry: Extract<RpcEntry, { kind: "unary" }>;
  readonly #stream: ServerHttp2Stream;
  readonly #readMaxBytes: number;
  readonly #call: CallContext;
  readonly #onData = (chunk: Buffer) => this.#data(chunk);
  readonly #onEnd = () => this.#end();
  #chunks: Buffer[] = [];
  #size = 0;
  #answered = false;

  constructor(
    entry: Extract<RpcEntry, { kind: "unary" }>,
    stream: ServerHttp2Stream,
    source: CallSource,
    timeoutMs: number | undefined,
    options: GrpcUnaryOptions,
  ) {
    this.#entry = entry;
    this.#stream = stream;
    this.#readMaxBytes = options.readMaxBytes;
    // A deadline, the client going away or shutdown answers at once; the handler's late result is dropped.
    this.#call = options.createContext("grpc", entry, source, timeoutMs, (why) => this.#finish(undefined, why));
  }

  start(timeoutError: ConnectError | undefined): void {
    // Without a listener, a stream error (the client resetting it) would be thrown; the
    // "close" that follows it ends the call.
    this.#stream.on("error", ignore);
    if (timeoutError) {
      this.#finish(undefined, timeoutError);
      return;
    }
    this.#stream.on("data", this.#onData);
    this.#stream.once("end", this.#onEnd);
  }

  #data(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.#readMaxBytes + 5) {
      const message = `message larger than ${this.#readMaxBytes} bytes`;
      // Answer, then reset the stream so the client stops sending (as connect-node does).
      resetAfterAnswer(this.#stream);
      this.#finish(undefined, new ConnectError(message, Code.ResourceExhausted));
      return;
    }
    this.#chunks.push(chunk);
  }

  #end(): void {
    if (this.#answered) return;
    const chunks = this.#chunks;
    const parsed = parseEnvelope(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#size));
    if (parsed instanceof ConnectError) {
      this.#finish(undefined, parsed);
      return;
    }
    const method = this.#entry.method;
    let input: Message;
    try {
      input = fromBinary(method.input, parsed);
    } catch {
      this.#finish(undefined, new ConnectError(`cannot decode ${method.input.typeName}`, Code.InvalidArgument));
      return;
    }
    void this.#run(input);
  }

  async #run(input: Message): Promise<void> {
    let output: Message;
    try {
      output = await this.#entry.call(input, this.#call.context);
    } catch (error) {
      this.#finish(undefined, ConnectError.from(error));
      return;
    }
    this.#finish(frame(binaryOf(this.#entry.method.output, output)), undefined);
  }

  #finish(frame: Uint8Array | undefined, error: ConnectError | undefined): void {
    if (this.#answered) return;
    this.#answered = true;
    const { context } = this.#call;
    this.#call.release();
    const stream = this.#stream;
    // Node keeps a finished stream's objects through the next young-generation GC: let go
    // of this call (and through it its context) now.
    stream.off("data", this.#onData);
    stream.off("end", this.#onEnd);
    this.#chunks = [];
    if (stream.destroyed || stream.closed) return;
    const head: OutgoingHttpHeaders = { ":status": 200, "content-type": "application/grpc+proto" };
    context.responseHeader.forEach((value, key) => {
      head[key] = value;
    });
    const trailer = context.responseTrailer;
    const trailers =
      error === undefined && (trailer as unknown as LazyHeaders).isEmpty?.()
        ? { "grpc-status": "0" }
        : Object.fromEntries(setTrailerStatus(new Headers(trailer), error));
    stream.respond(head, responseOptions);
    stream.once("wantTrailers", () => {
      if (!stream.destroyed) stream.sendTrailers(trailers);
    });
    if (frame) stream.end(frame);
    else stream.end();
  }
}

function ignore(): void {}

/** The client's address, read once per connection (the session's socket is a proxy object). */
const sessionAddresses = new WeakMap<Http2Session, string>();

function streamSource(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): CallSource {
  const session = stream.session;
  let remoteAddress = "";
  if (session !== undefined) {
    remoteAddress = sessionAddresses.get(session) ?? "";
    if (remoteAddress === "" && session.socket?.remoteAddress !== undefined) {
      remoteAddress = session.socket.remoteAddress;
      sessionAddresses.set(session, remoteAddress);
    }
  }
  return {
    headers,
    closer: stream,
    remoteAddress,
    encrypted: session?.encrypted === true,
    path: headers[":path"] ?? "/",
  };
}

/** The single message of a unary request: one uncompressed 5-byte-prefixed envelope. */
function parseEnvelope(body: Buffer): Uint8Array | ConnectError {
  if (body.length < 5) return new ConnectError("request has no message", Code.InvalidArgument);
  const flags = body.readUInt8(0);
  const length = body.readUInt32BE(1);
  if (flags & 0b1) return new ConnectError("compressed message without grpc-encoding", Code.InvalidArgument);
  if (length !== body.length - 5) {
    return new ConnectError("a unary request carries exactly one message", Code.InvalidArgument);
  }
  return body.subarray(5);
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(message.length + 5);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function headerValue(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}
