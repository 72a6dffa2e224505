import {
  create,
  fromBinary,
  type Message,
  toBinary,
  type DescMethod,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/**
 * A @grpc/grpc-js client for a protobuf-es service descriptor: what a sibling
 * service written with grpc-js would use. Serialisation is protobuf-es's.
 */
export function createGrpcJsClient(
  service: DescService,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): grpc.Client {
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (message: Message) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message: Message) => Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, service.name);
  return new Client(address, credentials);
}

/** Calls a unary method; rejects with the grpc-js ServiceError (code, details, metadata). */
export function grpcUnary<M extends DescMethod & { methodKind: "unary" }>(
  client: grpc.Client,
  method: M,
  request: MessageInitShape<M["input"]>,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<MessageShape<M["output"]>> {
  const fn = (client as unknown as Record<string, Function>)[method.localName] as Function;
  return new Promise((resolve, reject) => {
    fn.call(
      client,
      create(method.input, request),
      metadata,
      options,
      (error: grpc.ServiceError | null, response: MessageShape<M["output"]>) =>
        error ? reject(error) : resolve(response),
    );
  });
}
