import { create, createFileRegistry, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ServerReflectionResponse,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import { startReflectionTestServer, type TestServer } from "./reflection-test-server.ts";

type Request = MessageInitShape<typeof ServerReflectionRequestSchema>;

/**
 * One ServerReflectionInfo stream from @grpc/grpc-js, the client a sibling service
 * or grpcurl-like tool would use, with protobuf-es doing the (de)serialisation.
 * Answers arrive in request order, so each `ask` takes the next one.
 */
function openReflectionStream(client: grpc.Client) {
  const call = client.makeBidiStreamRequest(
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    (request: Request) =>
      Buffer.from(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, request))),
    (bytes: Buffer) => fromBinary(ServerReflectionResponseSchema, bytes),
  );
  const waiting: ((response: ServerReflectionResponse) => void)[] = [];
  call.on("data", (response: ServerReflectionResponse) => waiting.shift()?.(response));
  call.on("error", () => {}); // cancelled by `end` below; the test has its answers by then
  return {
    ask(request: Request): Promise<ServerReflectionResponse> {
      return new Promise((resolve) => {
        waiting.push(resolve);
        call.write(request);
      });
    },
    end: () => call.end(),
  };
}

/** The names of the files in a file_descriptor_response, in order. */
function fileNames(response: ServerReflectionResponse): string[] {
  if (response.messageResponse.case !== "fileDescriptorResponse")
    throw new Error(`got ${response.messageResponse.case}`);
  return response.messageResponse.value.fileDescriptorProto.map(
    (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
  );
}

/**
 * The files ordered so each comes after its imports, as a FileDescriptorSet must be;
 * fails if an import is missing from the answer. (createFileRegistry's resolver form
 * is no help here: with imports shared between files it can order them wrongly.)
 */
function importsFirst(protos: readonly FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(protos.map((proto) => [proto.name, proto]));
  const ordered: FileDescriptorProto[] = [];
  const visit = (name: string) => {
    const proto = byName.get(name);
    if (!proto) throw new Error(`import ${name} missing from the answer`);
    if (ordered.includes(proto)) return;
    proto.dependency.forEach(visit);
    ordered.push(proto);
  };
  for (const proto of protos) visit(proto.name);
  return ordered;
}

describe("server reflection v1 with a @grpc/grpc-js client", () => {
  let server: TestServer;
  let client: grpc.Client;
  beforeAll(async () => {
    server = await startReflectionTestServer();
    client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  it("answers list_services with every served service", async () => {
    const stream = openReflectionStream(client);
    const response = await stream.ask({ messageRequest: { case: "listServices", value: "" } });
    stream.end();
    expect(response.messageResponse.case).toBe("listServicesResponse");
    const names =
      response.messageResponse.case === "listServicesResponse" ? response.messageResponse.value.service : [];
    expect(names.map((service) => service.name).sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "telemed.patient.v1.PatientService",
    ]);
  });

  it("round-trips file_containing_symbol: the files rebuild the service with its imports", async () => {
    const stream = openReflectionStream(client);
    const request = {
      messageRequest: { case: "fileContainingSymbol", value: "telemed.patient.v1.PatientService" },
    } as const;
    const response = await stream.ask(request);
    stream.end();
    expect(response.originalRequest?.messageRequest).toEqual(request.messageRequest);
    const files =
      response.messageResponse.case === "fileDescriptorResponse"
        ? response.messageResponse.value.fileDescriptorProto
        : [];
    const protos = files.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
    expect(protos[0]?.name).toBe("telemed/patient/v1/patient_service.proto");
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(protos) }));
    const service = registry.getService("telemed.patient.v1.PatientService");
    expect(service?.methods.map((method) => method.name)).toEqual([
      "CreatePatient",
      "GetPatient",
      "UpdatePatient",
      "DeletePatient",
      "ListPatients",
    ]);
    expect(registry.getMessage("telemed.patient.v1.Patient")?.fields.length).toBeGreaterThan(5);
    expect(registry.getFile("buf/validate/validate.proto")).toBeDefined();
  });

  it("sends each import once per stream, but always the file asked for", async () => {
    const stream = openReflectionStream(client);
    const first = fileNames(
      await stream.ask({
        messageRequest: { case: "fileContainingSymbol", value: "telemed.patient.v1.PatientService" },
      }),
    );
    const second = fileNames(
      await stream.ask({ messageRequest: { case: "fileContainingSymbol", value: "telemed.patient.v1.Patient" } }),
    );
    const again = fileNames(
      await stream.ask({
        messageRequest: { case: "fileByFilename", value: "telemed/patient/v1/patient_service.proto" },
      }),
    );
    stream.end();
    expect(first).toContain("telemed/patient/v1/patient.proto");
    expect(first).toContain("google/protobuf/descriptor.proto");
    expect(new Set(first).size).toBe(first.length);
    expect(second).toEqual(["telemed/patient/v1/patient.proto"]);
    expect(again).toEqual(["telemed/patient/v1/patient_service.proto"]);
  });

  it("finds methods, fields and enum values, and the reflection service's own file", async () => {
    const stream = openReflectionStream(client);
    const symbols = [
      "telemed.patient.v1.PatientService.GetPatient",
      "telemed.patient.v1.Patient.etag",
      "telemed.patient.v1.SEX_FEMALE",
      "grpc.reflection.v1.ServerReflection",
      "grpc.health.v1.HealthCheckResponse.ServingStatus",
    ];
    const found = [];
    for (const value of symbols) {
      found.push(fileNames(await stream.ask({ messageRequest: { case: "fileContainingSymbol", value } }))[0]);
    }
    stream.end();
    expect(found).toEqual([
      "telemed/patient/v1/patient_service.proto",
      "telemed/patient/v1/patient.proto",
      "telemed/patient/v1/patient.proto",
      "grpc/reflection/v1/reflection.proto",
      "grpc/health/v1/health.proto",
    ]);
  });

  it("answers extension questions from the imported option files", async () => {
    const stream = openReflectionStream(client);
    const byExtension = await stream.ask({
      messageRequest: {
        case: "fileContainingExtension",
        value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 },
      },
    });
    const numbers = await stream.ask({
      messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.FieldOptions" },
    });
    stream.end();
    expect(fileNames(byExtension)[0]).toBe("google/api/annotations.proto");
    expect(numbers.messageResponse.case).toBe("allExtensionNumbersResponse");
    if (numbers.messageResponse.case !== "allExtensionNumbersResponse") return;
    expect(numbers.messageResponse.value.baseTypeName).toBe("google.protobuf.FieldOptions");
    // google.api.field_behavior and buf.validate.field
    expect(numbers.messageResponse.value.extensionNumber).toEqual(expect.arrayContaining([1052, 1159]));
  });

  it("answers NOT_FOUND in an error_response and keeps the stream open", async () => {
    const stream = openReflectionStream(client);
    const missing = await stream.ask({
      messageRequest: { case: "fileContainingSymbol", value: "telemed.patient.v1.NoSuchThing" },
    });
    const missingFile = await stream.ask({ messageRequest: { case: "fileByFilename", value: "no/such.proto" } });
    const after = await stream.ask({ messageRequest: { case: "listServices", value: "" } });
    stream.end();
    for (const response of [missing, missingFile]) {
      expect(response.messageResponse.case).toBe("errorResponse");
      expect(response.messageResponse.value).toMatchObject({ errorCode: grpc.status.NOT_FOUND });
    }
    expect(after.messageResponse.case).toBe("listServicesResponse");
  });
});
