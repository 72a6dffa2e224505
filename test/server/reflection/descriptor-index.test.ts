import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { Health } from "../../../gen/grpc/health/v1/health_pb.js";
import { PatientService } from "../../../gen/telemed/patient/v1/patient_service_pb.js";
import { DescriptorIndex } from "../../../src/server/reflection/descriptor-index.ts";
import { reflectionServices } from "../../../src/server/reflection/reflection-service.ts";

const index = new DescriptorIndex([PatientService, Health, ...reflectionServices]);

/** The `.proto` name of the file holding a symbol, or undefined. */
const fileOf = (symbol: string) => index.fileContainingSymbol(symbol)?.proto.name;

describe("DescriptorIndex", () => {
  it("names the served services in the order given", () => {
    expect(index.serviceNames).toEqual([
      "telemed.patient.v1.PatientService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
  });

  it("finds files by their import name, including transitive imports", () => {
    expect(index.fileByName("telemed/patient/v1/patient.proto")?.proto.name).toBe("telemed/patient/v1/patient.proto");
    expect(index.fileByName("google/protobuf/descriptor.proto")).toBeDefined();
    expect(index.fileByName("telemed/patient/v1/patient")).toBeUndefined();
  });

  it("finds the file of every kind of symbol", () => {
    expect(fileOf("telemed.patient.v1.PatientService")).toBe("telemed/patient/v1/patient_service.proto");
    expect(fileOf("telemed.patient.v1.PatientService.ListPatients")).toBe("telemed/patient/v1/patient_service.proto");
    expect(fileOf("telemed.patient.v1.GetPatientRequest.name")).toBe("telemed/patient/v1/patient_service.proto");
    expect(fileOf("telemed.patient.v1.Sex")).toBe("telemed/patient/v1/patient.proto");
    expect(fileOf("telemed.patient.v1.SEX_MALE")).toBe("telemed/patient/v1/patient.proto");
    expect(fileOf("grpc.health.v1.HealthCheckResponse.ServingStatus")).toBe("grpc/health/v1/health.proto");
    expect(fileOf("grpc.health.v1.HealthCheckResponse.SERVING")).toBe("grpc/health/v1/health.proto");
    expect(fileOf("grpc.reflection.v1.ServerReflectionRequest.message_request")).toBe(
      "grpc/reflection/v1/reflection.proto",
    );
    expect(fileOf("google.api.http")).toBe("google/api/annotations.proto");
    expect(fileOf("buf.validate.field")).toBe("buf/validate/validate.proto");
  });

  it("does not find unknown or malformed symbols", () => {
    expect(fileOf("telemed.patient.v1.Nothing")).toBeUndefined();
    expect(fileOf(".telemed.patient.v1.PatientService")).toBeUndefined();
    expect(fileOf("")).toBeUndefined();
  });

  it("indexes extensions by extendee and number", () => {
    expect(index.fileContainingExtension("google.protobuf.MethodOptions", 72295728)?.proto.name).toBe(
      "google/api/annotations.proto",
    );
    expect(index.fileContainingExtension("google.protobuf.MethodOptions", 1)).toBeUndefined();
    const numbers = index.extensionNumbersOf("google.protobuf.FieldOptions") ?? [];
    expect(numbers).toEqual(expect.arrayContaining([1052, 1055, 1159]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(index.extensionNumbersOf("telemed.patient.v1.Patient")).toEqual([]);
    expect(index.extensionNumbersOf("no.such.Message")).toBeUndefined();
  });

  it("serializes a file as the FileDescriptorProto it was generated from", () => {
    const file = index.fileByName("telemed/patient/v1/patient_service.proto");
    if (!file) throw new Error("missing file");
    const proto = fromBinary(FileDescriptorProtoSchema, index.serialized(file));
    expect(proto.name).toBe("telemed/patient/v1/patient_service.proto");
    expect(proto.dependency).toContain("telemed/patient/v1/patient.proto");
    expect(proto.service[0]?.method.length).toBe(5);
    expect(index.serialized(file)).toBe(index.serialized(file));
  });
});
