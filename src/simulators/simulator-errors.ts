import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

/** One invalid request field, for google.rpc.BadRequest. */
export interface SimulatorViolation {
  readonly field: string;
  readonly description: string;
}

/**
 * An error a simulator answers on purpose: a gRPC status code, a stable UPPER_SNAKE
 * reason (sent as google.rpc.ErrorInfo, as the sibling teams' services do) and a
 * message safe to show. Anything else a handler throws becomes a bare INTERNAL.
 */
export class SimulatorError extends Error {
  readonly code: grpc.status;
  readonly reason: string;
  readonly violations: readonly SimulatorViolation[];
  readonly metadata: Readonly<Record<string, string>>;

  constructor(
    code: grpc.status,
    reason: string,
    message: string,
    options: { violations?: readonly SimulatorViolation[]; metadata?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "SimulatorError";
    this.code = code;
    this.reason = reason;
    this.violations = options.violations ?? [];
    this.metadata = options.metadata ?? {};
  }
}

/** NOT_FOUND for a resource kind, for example `notFound("Slot", name)`. */
export function notFound(kind: string, name: string): SimulatorError {
  return new SimulatorError(grpc.status.NOT_FOUND, `${upperSnake(kind)}_NOT_FOUND`, `${kind} ${name} not found.`, {
    metadata: { resource: name },
  });
}

/** FAILED_PRECONDITION: the resource is not in a state that allows the call. */
export function failedPrecondition(
  reason: string,
  message: string,
  metadata: Record<string, string> = {},
): SimulatorError {
  return new SimulatorError(grpc.status.FAILED_PRECONDITION, reason, message, { metadata });
}

/** INVALID_ARGUMENT for one field that passed the contract's rules but not the service's. */
export function invalidField(field: string, description: string, reason = "INVALID_FIELD"): SimulatorError {
  return new SimulatorError(grpc.status.INVALID_ARGUMENT, reason, `Invalid ${field}: ${description}`, {
    violations: [{ field, description }],
  });
}

/**
 * The grpc-js error object for an error: code and message, plus the standard
 * `grpc-status-details-bin` trailer (google.rpc.Status with ErrorInfo and BadRequest)
 * that Connect and grpc-js clients decode. `domain` names the sibling service.
 */
export function toServiceError(error: SimulatorError, domain: string): Partial<grpc.StatusObject> {
  const details = [
    anyPack(
      ErrorInfoSchema,
      create(ErrorInfoSchema, { reason: error.reason, domain, metadata: { ...error.metadata } }),
    ),
  ];
  if (error.violations.length > 0) {
    details.push(
      anyPack(
        BadRequestSchema,
        create(BadRequestSchema, {
          fieldViolations: error.violations.map((v) => ({ field: v.field, description: v.description })),
        }),
      ),
    );
  }
  const status = create(StatusSchema, { code: error.code, message: error.message, details });
  const metadata = new grpc.Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)));
  return { code: error.code, details: error.message, metadata };
}

function upperSnake(kind: string): string {
  return kind
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .replace(/\W+/g, "_")
    .toUpperCase();
}
