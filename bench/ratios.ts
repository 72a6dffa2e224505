import type { TargetId } from "./settings.ts";

/** A ratio of two targets' throughput, with its goal if it has one. */
export interface RatioSpec {
  readonly key: string;
  readonly label: string;
  readonly numerator: TargetId;
  readonly denominator: TargetId;
  /** Issue 2's goal; undefined for ratios shown for reference only. */
  readonly goal: number | undefined;
}

/** The goals of issue 2 ("Performance"), then reference points from its text. */
export const ratioSpecs: readonly RatioSpec[] = [
  {
    key: "getPatientGrpcVsGrpcJsEcho",
    label: "GetPatient gRPC (one patient) / bare grpc-js echo (both h2load)",
    numerator: "get-patient-grpc",
    denominator: "grpc-js-echo",
    goal: 0.5,
  },
  {
    key: "getPatientJsonVsConnectJsonEcho",
    label: "GetPatient Connect JSON (one patient) / bare connect-node Connect JSON echo (both h2load)",
    numerator: "get-patient-json",
    denominator: "connect-echo-json",
    goal: 0.8,
  },
  {
    key: "createPatientVsRawInsert",
    label: "CreatePatient / raw pg INSERT",
    numerator: "create-patient",
    denominator: "pg-insert",
    goal: 0.5,
  },
  {
    key: "bookConsultationVsRawInsert",
    label: "BookConsultation, distinct slots / raw pg INSERT of a booking row (issue 4)",
    numerator: "book-consultation",
    denominator: "pg-insert-consultation",
    goal: 0.5,
  },
  {
    key: "getPatientGrpcManyVsGrpcJsEchoDriver",
    label: "cross-check, many patients: GetPatient gRPC / grpc-js echo (both bench driver)",
    numerator: "get-patient-grpc-many",
    denominator: "grpc-js-echo-driver",
    goal: 0.5,
  },
  {
    key: "getPatientJsonManyVsConnectJsonEchoDriver",
    label: "cross-check, many patients: GetPatient Connect JSON / connect-node JSON echo (both bench driver)",
    numerator: "get-patient-json-many",
    denominator: "connect-echo-json-driver",
    goal: 0.8,
  },
  {
    key: "getPatientGrpcVsRawSelect",
    label: "GetPatient gRPC (one patient) / raw pg SELECT of that row, one query per read",
    numerator: "get-patient-grpc",
    denominator: "pg-select",
    goal: undefined,
  },
  {
    key: "connectGrpcEchoVsGrpcJsEcho",
    label: "connect-node gRPC echo / grpc-js echo (issue: ~0.16)",
    numerator: "connect-echo-grpc",
    denominator: "grpc-js-echo",
    goal: undefined,
  },
  {
    key: "connectJsonEchoVsGrpcJsEcho",
    label: "connect-node Connect JSON echo / grpc-js echo (issue: ~0.3)",
    numerator: "connect-echo-json",
    denominator: "grpc-js-echo",
    goal: undefined,
  },
];
