import type { TargetId } from "./settings.ts";

/**
 * How two targets are compared. `rps` (the default): numerator rps / denominator rps,
 * met when at least the goal. `p99`: numerator p99 / denominator p99, met when at most
 * the goal. `p99-margin`: numerator p99 minus denominator p99 in ms, met when at most
 * the goal.
 */
export type RatioMeasure = "rps" | "p99" | "p99-margin";

/** A ratio of two targets' throughput (or a latency comparison), with its goal if it has one. */
export interface RatioSpec {
  readonly key: string;
  readonly label: string;
  readonly numerator: TargetId;
  readonly denominator: TargetId;
  /** The goal; undefined for ratios shown for reference only. */
  readonly goal: number | undefined;
  /** What is compared; `rps` when absent. */
  readonly measure?: RatioMeasure;
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
    key: "getRecordGrpcVsGrpcJsEcho",
    label: "GetRecord gRPC, one encrypted record / bare grpc-js echo (both h2load; issue 6, the read goal)",
    numerator: "get-record-grpc",
    denominator: "grpc-js-echo",
    goal: 0.5,
  },
  {
    key: "listRecordsGrpcVsGrpcJsEcho",
    label: "ListRecords gRPC, a page of 10 encrypted records / bare grpc-js echo (both h2load)",
    numerator: "list-records-grpc",
    denominator: "grpc-js-echo",
    goal: undefined,
  },
  {
    key: "createRecordVsRawInsert",
    label: "CreateRecord / raw pg INSERT of a record's row (issue 6, the write goal)",
    numerator: "create-record",
    denominator: "pg-insert-record",
    goal: 0.5,
  },
  {
    key: "emergencyIdleVsJetStream",
    label: "emergency ack-to-paramedic p99, idle - raw JetStream publish-to-consume p99 (issue 5)",
    numerator: "emergency-ack-to-paramedic",
    denominator: "jetstream-publish-consume",
    goal: 10,
    measure: "p99-margin",
  },
  {
    key: "emergencyFloodVsIdle",
    label: "emergency ack-to-paramedic p99, under the routine flood / idle (issue 5)",
    numerator: "emergency-ack-to-paramedic-loaded",
    denominator: "emergency-ack-to-paramedic",
    goal: 2,
    measure: "p99",
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
