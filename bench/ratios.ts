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
    label: "GetPatient gRPC / bare grpc-js echo",
    numerator: "get-patient-grpc",
    denominator: "grpc-js-echo",
    goal: 0.5,
  },
  {
    key: "getPatientJsonVsConnectJsonEcho",
    label: "GetPatient Connect JSON / bare connect-node Connect JSON echo",
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
