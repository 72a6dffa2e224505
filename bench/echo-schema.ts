import { create, createFileRegistry, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

/**
 * `bench.v1.EchoService/Echo(EchoMessage) returns (EchoMessage)` with
 * `message EchoMessage { string text = 1; }`, built from a descriptor at run time so
 * the bench needs no generated code of its own. The bare echo servers (grpc-js and
 * connect-node) serve it; protobuf-es does the (de)serialisation in both, as it does
 * in the service.
 */
const file = create(FileDescriptorProtoSchema, {
  name: "bench/v1/echo.proto",
  package: "bench.v1",
  syntax: "proto3",
  messageType: [
    {
      name: "EchoMessage",
      field: [
        {
          name: "text",
          jsonName: "text",
          number: 1,
          type: FieldDescriptorProto_Type.STRING,
          label: FieldDescriptorProto_Label.OPTIONAL,
        },
      ],
    },
  ],
  service: [
    {
      name: "EchoService",
      method: [{ name: "Echo", inputType: ".bench.v1.EchoMessage", outputType: ".bench.v1.EchoMessage" }],
    },
  ],
});

const registry = createFileRegistry(file, () => undefined);

/** The echo request and response message. */
export const EchoMessageSchema = registry.getMessage("bench.v1.EchoMessage") as DescMessage;

/** The echo service, one unary method. */
export const EchoService = registry.getService("bench.v1.EchoService") as DescService;

/** gRPC path of the echo method. */
export const echoPath = "/bench.v1.EchoService/Echo";

/** The text every echo request carries: a small message, like a short RPC. */
export const echoText = "hello, patient service bench";
