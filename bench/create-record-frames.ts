import { create, toBinary } from "@bufbuild/protobuf";
import { CreateRecordRequestSchema } from "../gen/telemed/patient/v1/record_service_pb.js";
import { benchRequestId } from "./consultation-slots.ts";
import { grpcFrame } from "./grpc-frame.ts";
import { benchPrescription } from "./record-fixture.ts";

/** What request `n` of a CreateRecord load is made of (JSON: it travels to the driver child). */
export interface RecordCreateSource {
  /** The run id (8 hex digits): the first group of every request id. */
  readonly runId: string;
  /** Second group of the request ids, so they never repeat across targets. */
  readonly tag: number;
  /** `patients/{id}` the records are for, request `n` for `parents[n % length]`. */
  readonly parents: readonly string[];
}

/** CreateRecord request `n`: the bench prescription for `parents[n % length]`, request id `n`. */
export function createRecordRequest(source: RecordCreateSource, n: number) {
  return create(CreateRecordRequestSchema, {
    parent: source.parents[n % source.parents.length] as string,
    record: benchPrescription(),
    requestId: benchRequestId(source.runId, source.tag, n),
  });
}

/**
 * gRPC bodies of CreateRecord for the load driver, one template per patient with the
 * request id's last group patched per request (ids are fixed-length, so no
 * re-encoding): every request stores a new record.
 */
export function createRecordFrames(source: RecordCreateSource): (n: number) => Buffer {
  if (source.parents.length === 0) throw new Error("no patients to write records for");
  const templates = source.parents.map((_, i) => {
    const frame = grpcFrame(toBinary(CreateRecordRequestSchema, createRecordRequest(source, i)));
    const id = Buffer.from(benchRequestId(source.runId, source.tag, i), "latin1");
    const at = frame.indexOf(id);
    if (at < 0 || frame.indexOf(id, at + 1) >= 0) throw new Error("the request id must appear once in the frame");
    return { frame, counterAt: at + id.length - 12 };
  });
  return (n) => {
    const template = templates[n % templates.length] as (typeof templates)[number];
    const body = Buffer.from(template.frame);
    body.write(n.toString(16).padStart(12, "0"), template.counterAt, 12, "latin1");
    return body;
  };
}
