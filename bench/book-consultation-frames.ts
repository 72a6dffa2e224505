import { create, toBinary } from "@bufbuild/protobuf";
import { ConsultationMode } from "../gen/telemed/patient/v1/consultation_pb.js";
import { CreateConsultationRequestSchema } from "../gen/telemed/patient/v1/consultation_service_pb.js";
import { benchRequestId, type SlotRange, SlotSequence } from "./consultation-slots.ts";
import { grpcFrame } from "./grpc-frame.ts";

/** What request `n` of a booking load is made of (JSON: it travels to the driver child). */
export interface BookingSource {
  /** The run id (8 hex digits): the first group of every request id. */
  readonly runId: string;
  /** Second group of the request ids, one per use, so ids never repeat across targets. */
  readonly tag: number;
  /** The slots: request `n` books slot `n` of this range. */
  readonly range: SlotRange;
  /** `patients/{id}` the bookings are for, request `n` for `parents[n % length]`. */
  readonly parents: readonly string[];
}

/** The reason every bench booking gives (sealed at rest by the service, as any reason). */
export const benchReason = "Follow-up on blood pressure readings";

/** CreateConsultation request `n`: slot `n` of the range, its own request id, VIDEO. */
export function bookConsultationRequest(source: BookingSource, slots: SlotSequence, n: number) {
  const slot = slots.slot(n);
  const doctor = `doctors/${slot.doctorId}`;
  return create(CreateConsultationRequestSchema, {
    parent: source.parents[n % source.parents.length] as string,
    consultation: { doctor, slot: `${doctor}/slots/${slot.slotId}`, mode: ConsultationMode.VIDEO, reason: benchReason },
    requestId: benchRequestId(source.runId, source.tag, n),
  });
}

/**
 * gRPC bodies of CreateConsultation for the load driver: body `n` books slot `n` with
 * request id `n`. Each body is encoded when it is sent (slot names differ in length,
 * so there is no template to patch); the driver runs on its own core. Throws, rather
 * than reuse a slot, when `n` runs past the range, and when a number comes twice.
 */
export function bookConsultationFrames(source: BookingSource): (n: number) => Buffer {
  if (source.parents.length === 0) throw new Error("no patients to book for");
  const slots = new SlotSequence(source.range);
  const sent = new Set<number>();
  return (n) => {
    if (sent.has(n)) throw new Error(`booking body ${n} was asked for twice: its slot would be booked twice`);
    sent.add(n);
    return grpcFrame(toBinary(CreateConsultationRequestSchema, bookConsultationRequest(source, slots, n)));
  };
}
