import { create, toBinary } from "@bufbuild/protobuf";
import { CreatePatientRequestSchema } from "../gen/telemed/patient/v1/patient_service_pb.js";
import { grpcFrame } from "./grpc-frame.ts";
import { benchEmail, benchPatient, emailCounterSpan } from "./patient-fixture.ts";

/**
 * gRPC request bodies for CreatePatient that differ only in the email's counter
 * digits. The message is encoded once with protobuf-es; each body is a copy with
 * `n` written over the placeholder digits, so the load driver spends nothing on
 * encoding and every request stores a new, unique email.
 */
export function createPatientFrames(prefix: string): (n: number) => Buffer {
  const placeholder = benchEmail(prefix, 0);
  const template = grpcFrame(
    toBinary(CreatePatientRequestSchema, create(CreatePatientRequestSchema, { patient: benchPatient(placeholder) })),
  );
  const at = template.indexOf(Buffer.from(placeholder, "latin1"));
  if (at < 0 || template.indexOf(Buffer.from(placeholder, "latin1"), at + 1) >= 0) {
    throw new Error("the email must appear exactly once in the CreatePatient frame");
  }
  const span = emailCounterSpan(prefix);
  return (n) => {
    const body = Buffer.from(template);
    body.write(String(n).padStart(span.length, "0"), at + span.offset, span.length, "latin1");
    return body;
  };
}
