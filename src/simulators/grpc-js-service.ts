import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type Message,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import type { Validator } from "@bufbuild/protovalidate";
import * as grpc from "@grpc/grpc-js";
import { SimulatorError, toServiceError } from "./simulator-errors.ts";

/** What a handler knows about its call besides the request. */
export interface CallContext {
  /** Aborted when the client cancels or its deadline passes: streams stop writing. */
  readonly signal: AbortSignal;
  /** The request metadata (headers). */
  readonly metadata: grpc.Metadata;
}

/** Implementation of a unary method. */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => MessageInitShape<O> | Promise<MessageInitShape<O>>;

/** Implementation of a server-streaming method: yields the responses in order. */
export type ServerStreamHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

/** One handler per method of a generated service, typed from its descriptor. */
export type ServiceHandlers<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethodUnary<infer I, infer O>
    ? UnaryHandler<I, O>
    : S["method"][K] extends DescMethodServerStreaming<infer I, infer O>
      ? ServerStreamHandler<I, O>
      : never;
};

/** How a service is served. */
export interface ServeOptions {
  /** The google.rpc.ErrorInfo domain of its errors, for example `doctor.telemed.example`. */
  readonly domain: string;
  /** Checks every request against the contract's protovalidate rules before the handler runs. */
  readonly validator: Validator;
  /** Told about errors that are bugs (anything but a SimulatorError); the client gets a bare INTERNAL. */
  readonly onInternalError?: (error: unknown, method: string) => void;
}

type AnyHandler = (request: Message, context: CallContext) => unknown;

/**
 * Serves a protobuf-es service descriptor on a @grpc/grpc-js server: builds the
 * grpc-js service definition (protobuf-es does the binary (de)serialisation) and
 * wraps each handler so that requests are decoded and validated, errors become gRPC
 * statuses with google.rpc details, and streams respect back-pressure and cancellation.
 * Client- and bidi-streaming methods are refused at registration: no sibling
 * contract has them.
 */
export function addProtoService<S extends DescService>(
  server: grpc.Server,
  service: S,
  handlers: ServiceHandlers<S>,
  options: ServeOptions,
): void {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Message>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const handler = (handlers as unknown as Record<string, AnyHandler | undefined>)[method.localName];
    if (handler === undefined) throw new Error(`no handler for ${service.typeName}.${method.name}`);
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
      throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
    }
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.name,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      // Decoding happens in the call, so a malformed message gets INVALID_ARGUMENT
      // rather than the INTERNAL grpc-js answers for a throwing deserializer.
      requestDeserialize: (bytes: Buffer) => bytes,
      requestSerialize: (bytes: Buffer) => bytes,
      responseSerialize: (message: Message) => asBuffer(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
    implementation[method.localName] =
      method.methodKind === "unary"
        ? unaryCall(method, handler, options)
        : serverStreamingCall(method, handler as (r: Message, c: CallContext) => AsyncIterable<unknown>, options);
  }
  server.addService(definition as grpc.ServiceDefinition, implementation);
}

function unaryCall(
  method: DescMethod,
  handler: AnyHandler,
  options: ServeOptions,
): grpc.handleUnaryCall<Buffer, Message> {
  return (call, callback) => {
    const context = contextOf(call);
    Promise.resolve()
      .then(() => handler(decode(method, call.request, options.validator), context))
      .then(
        (output) => callback(null, create(method.output, output as MessageInitShape<DescMessage>)),
        (error: unknown) => callback(statusOf(error, method, options)),
      );
  };
}

function serverStreamingCall(
  method: DescMethod,
  handler: (request: Message, context: CallContext) => AsyncIterable<unknown>,
  options: ServeOptions,
): grpc.handleServerStreamingCall<Buffer, Message> {
  return (call) => {
    const context = contextOf(call);
    const run = async () => {
      const request = decode(method, call.request, options.validator);
      for await (const output of handler(request, context)) {
        if (context.signal.aborted) return;
        if (!call.write(create(method.output, output as MessageInitShape<DescMessage>))) {
          await drained(call, context.signal);
        }
      }
      if (!context.signal.aborted) call.end();
    };
    run().catch((error: unknown) => {
      // grpc-js ends a server stream with the status of an emitted error.
      if (!context.signal.aborted) call.emit("error", statusOf(error, method, options));
    });
  };
}

function contextOf(call: grpc.ServerUnaryCall<Buffer, Message> | grpc.ServerWritableStream<Buffer, Message>) {
  const controller = new AbortController();
  call.once("cancelled", () => controller.abort(new Error("cancelled by the client or its deadline")));
  return { signal: controller.signal, metadata: call.metadata };
}

function decode(method: DescMethod, bytes: Buffer, validator: Validator): Message {
  let request: Message;
  try {
    request = fromBinary(method.input, bytes);
  } catch {
    throw new SimulatorError(
      grpc.status.INVALID_ARGUMENT,
      "MALFORMED_REQUEST",
      `cannot decode ${method.input.typeName}`,
    );
  }
  const result = validator.validate(method.input, request);
  if (result.kind === "error") throw result.error; // a rule that does not compile is a contract bug
  if (result.kind === "invalid") {
    const violations = result.violations.map((v) => ({ field: pathToString(v.field), description: v.message }));
    const first = violations[0];
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
    throw new SimulatorError(
      grpc.status.INVALID_ARGUMENT,
      "INVALID_REQUEST",
      `Invalid request: ${first ? `${first.field || "request"}: ${first.description}` : "rule violated"}${more}.`,
      { violations },
    );
  }
  return request;
}

function statusOf(error: unknown, method: DescMethod, options: ServeOptions): Partial<grpc.StatusObject> {
  if (error instanceof SimulatorError) return toServiceError(error, options.domain);
  options.onInternalError?.(error, `${method.parent.typeName}/${method.name}`);
  return { code: grpc.status.INTERNAL, details: "Internal error in the simulator." };
}

function drained(call: grpc.ServerWritableStream<Buffer, Message>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    call.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
