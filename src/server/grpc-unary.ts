import { type DescMethod, type DescService, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { RpcTable, UnaryCall } from "../rpc/rpc-table.ts";
import type { CreateCallContext } from "./call-context.ts";

/** Options of the native gRPC path. */
export interface GrpcUnaryOptions {
  /** Largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
  /** Builds each call's context (deadline, client going away, shutdown). */
  readonly createContext: CreateCallContext;
}

const maxTimeoutMs = 2 ** 31 - 1;
const grpcContentType = /^application\/grpc(\+proto)?(;.*)?$/i;

/**
 * The hot path for unary gRPC over HTTP/2: plain `proto` framing, no compression.
 * connect-node serves gRPC correctly but its general pipeline (async iterables,
 * several allocations per message) costs ~6x the time of @grpc/grpc-js per call
 * (README, "Performance"); grpc-js cannot share one port with Connect and gRPC-Web
 * per stream. So this path does the framing itself and reuses Connect's own helpers
 * for what must match the protocol exactly: timeout parsing and the status trailers
 * (grpc-status, percent-encoded grpc-message, grpc-status-details-bin).
 * Everything else (streaming, gRPC+JSON, compressed requests) goes to connect-node.
 */
export function createGrpcUnaryHandler(table: RpcTable, options: GrpcUnaryOptions) {
  /** Answers the call and returns true, or returns false to let connect-node take it. */
  return function handle(req: Http2ServerRequest, res: Http2ServerResponse): boolean {
    const entry = table.get(req.url);
    if (entry?.kind !== "unary" || req.method !== "POST") return false;
    if (!grpcContentType.test(req.headers["content-type"] ?? "")) return false;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    serve(entry.service, entry.method, entry.call, req, res, options);
    return true;
  };
}

function serve(
  service: DescService,
  method: DescMethod,
  call: UnaryCall,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  options: GrpcUnaryOptions,
): void {
  const timeout = parseTimeout(headerValue(req.headers["grpc-timeout"]), maxTimeoutMs);
  // A deadline, the client going away or shutdown answers at once; the handler's late result is dropped.
  const { context, release } = options.createContext("grpc", { service, method }, req, res, timeout.timeoutMs, (why) =>
    finish(undefined, why),
  );
  let answered = false;
  const finish = (frame: Uint8Array | undefined, error: ConnectError | undefined) => {
    if (answered) return;
    answered = true;
    release();
    if (res.stream.destroyed) return;
    const head: Record<string, string> = { "content-type": "application/grpc+proto" };
    context.responseHeader.forEach((value, key) => {
      head[key] = value;
    });
    res.writeHead(200, head);
    res.addTrailers(Object.fromEntries(setTrailerStatus(new Headers(context.responseTrailer), error)));
    if (frame) res.end(frame);
    else res.end();
  };
  if (timeout.error) {
    finish(undefined, timeout.error);
    return;
  }

  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > options.readMaxBytes + 5) {
      finish(undefined, new ConnectError(`message larger than ${options.readMaxBytes} bytes`, Code.ResourceExhausted));
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.once("end", () => {
    if (answered) return;
    const parsed = parseEnvelope(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    if (parsed instanceof ConnectError) {
      finish(undefined, parsed);
      return;
    }
    let input: ReturnType<typeof fromBinary>;
    try {
      input = fromBinary(method.input, parsed);
    } catch {
      finish(undefined, new ConnectError(`cannot decode ${method.input.typeName}`, Code.InvalidArgument));
      return;
    }
    call(input, context).then(
      (output) => finish(frame(toBinary(method.output, output)), undefined),
      (error: unknown) => finish(undefined, ConnectError.from(error)),
    );
  });
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
