import { create, createFileRegistry, setExtension, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  file_google_protobuf_timestamp,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { file_google_api_annotations, http } from "../../../gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../../../gen/google/api/http_pb.js";
import { file_telemed_patient_v1_patient } from "../../../gen/telemed/patient/v1/patient_pb.js";

/**
 * A test-only service whose annotations use the parts of the google.api.http grammar
 * PatientService does not (yet): custom verbs, `**`, `body: "*"`, `response_body`, a
 * GET whose request has nested, repeated, enum, bool, int64 and Timestamp fields for
 * query parameters, and a streaming method (which REST must skip). It is built as a
 * descriptor in memory so the transcoder's tests do not depend on contracts that are
 * still being written.
 */
export const FixtureService: DescService = buildFixtureService();

/** The fixture, or with `rules` given, a service of just those methods (to test annotations that must fail). */
export function buildFixtureService(rules?: Record<string, MessageInitShape<typeof HttpRuleSchema>>): DescService {
  const field = (name: string, number: number, type: Type, extra: object = {}) => ({
    name,
    number,
    type,
    label: Label.OPTIONAL,
    jsonName: name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
    ...extra,
  });
  const repeated = { label: Label.REPEATED };
  const method = (name: string, rule: MessageInitShape<typeof HttpRuleSchema>, serverStreaming = false) => {
    const options = create(MethodOptionsSchema);
    setExtension(options, http, create(HttpRuleSchema, rule));
    return {
      name,
      inputType: ".telemed.resttest.v1.SearchRequest",
      outputType: ".telemed.resttest.v1.SearchResponse",
      options,
      serverStreaming,
    };
  };
  const file = create(FileDescriptorProtoSchema, {
    name: "telemed/resttest/v1/fixture.proto",
    package: "telemed.resttest.v1",
    syntax: "proto3",
    dependency: ["google/api/annotations.proto", "google/protobuf/timestamp.proto", "telemed/patient/v1/patient.proto"],
    messageType: [
      {
        name: "SearchRequest",
        field: [
          field("patient", 1, Type.MESSAGE, { typeName: ".telemed.patient.v1.Patient" }),
          field("sexes", 2, Type.ENUM, { typeName: ".telemed.patient.v1.Sex", ...repeated }),
          field("include_deleted", 3, Type.BOOL),
          field("min_age", 4, Type.INT64),
          field("since", 5, Type.MESSAGE, { typeName: ".google.protobuf.Timestamp" }),
          field("numbers", 6, Type.INT32, repeated),
          field("parent", 7, Type.STRING),
          field("name", 8, Type.STRING),
          field("reason", 9, Type.STRING),
        ],
      },
      {
        name: "SearchResponse",
        field: [
          field("items", 1, Type.STRING, repeated),
          field("echo", 2, Type.MESSAGE, { typeName: ".telemed.resttest.v1.SearchRequest" }),
        ],
      },
    ],
    service: [
      {
        name: "FixtureService",
        method: rules
          ? Object.entries(rules).map(([name, rule]) => method(name, rule))
          : [
              method("Search", {
                pattern: { case: "get", value: "/fixtures:search" },
                additionalBindings: [
                  { pattern: { case: "get", value: "/{parent=patients/*}/history" }, responseBody: "echo" },
                ],
              }),
              method("Cancel", {
                pattern: { case: "post", value: "/{name=patients/*/consultations/*}:cancel" },
                body: "*",
              }),
              method("Archive", { pattern: { case: "post", value: "/{name=patients/*}:archive" }, body: "*" }),
              method("Files", { pattern: { case: "get", value: "/{name=files/**}" }, responseBody: "items" }),
              method("Reason", { pattern: { case: "put", value: "/{name=reasons/*}" }, body: "reason" }),
              method("Watch", { pattern: { case: "get", value: "/fixtures:watch" } }, true),
            ],
      },
    ],
  });
  const deps = [file_google_api_annotations, file_google_protobuf_timestamp, file_telemed_patient_v1_patient];
  const registry = createFileRegistry(file, (name) => deps.find((dep) => dep.proto.name === name));
  const service = registry.getService("telemed.resttest.v1.FixtureService");
  if (service === undefined) throw new Error("fixture service did not build");
  return service;
}
