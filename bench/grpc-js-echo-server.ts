import { fromBinary, toBinary, type Message } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { failChild, sendToParent, serveParent } from "./child-ipc.ts";
import { EchoMessageSchema, echoPath } from "./echo-schema.ts";

/**
 * Child process: a bare @grpc/grpc-js server with one unary echo method, protobuf-es
 * doing the (de)serialisation. The baseline for GetPatient over gRPC.
 */
async function main(): Promise<void> {
  let ok = 0;
  const server = new grpc.Server();
  const definition: grpc.ServiceDefinition = {
    echo: {
      path: echoPath,
      requestStream: false,
      responseStream: false,
      requestSerialize: (message: Message) => Buffer.from(toBinary(EchoMessageSchema, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(EchoMessageSchema, bytes),
      responseSerialize: (message: Message) => Buffer.from(toBinary(EchoMessageSchema, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(EchoMessageSchema, bytes),
    },
  };
  server.addService(definition, {
    echo: (call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
      ok++;
      callback(null, call.request);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  serveParent(
    () => ({ ok, failed: 0 }),
    () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  );
  sendToParent({ type: "ready", port });
}

main().catch(failChild);
