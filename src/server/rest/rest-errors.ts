import { create, createRegistry, toJson, type JsonObject, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { anyPack, AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { file_google_rpc_error_details } from "../../../gen/google/rpc/error_details_pb.js";
import { statusError } from "../../rpc/error-mapping.ts";

/**
 * A refusal of the HTTP request itself (bad path value, body or query, wrong media
 * type, too large), before any handler ran: the RPC error for the body, and the HTTP
 * status when it is not the one the code maps to (405, 413, 415).
 */
export class RestError extends Error {
  readonly error: ConnectError;
  readonly httpStatus: number | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** The request body was left unread: HTTP/1.1 must close the connection after answering. */
  readonly closeConnection: boolean;

  constructor(
    error: ConnectError,
    options: { httpStatus?: number; headers?: Record<string, string>; closeConnection?: boolean } = {},
  ) {
    super(error.rawMessage);
    this.name = "RestError";
    this.error = error;
    this.httpStatus = options.httpStatus;
    this.headers = options.headers ?? {};
    this.closeConnection = options.closeConnection ?? false;
  }
}

/** INVALID_ARGUMENT with ErrorInfo and, when a field is named, a BadRequest field violation. */
export function invalidArgument(reason: string, message: string, field?: string): RestError {
  const violations = field === undefined ? [] : [{ field, description: message }];
  return new RestError(statusError(Code.InvalidArgument, reason, message, violations));
}

/**
 * google.rpc.Code -> HTTP status as Google maps it (AIP-193, google/rpc/code.proto).
 * connect's table agrees today; these entries keep REST on Google's mapping should
 * the Connect protocol ever change its own.
 */
const googleHttpStatus: Partial<Record<Code, number>> = {
  [Code.Canceled]: 499,
  [Code.InvalidArgument]: 400,
  [Code.FailedPrecondition]: 400,
  [Code.OutOfRange]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.Aborted]: 409,
  [Code.AlreadyExists]: 409,
  [Code.ResourceExhausted]: 429,
  [Code.Internal]: 500,
  [Code.Unknown]: 500,
  [Code.DataLoss]: 500,
  [Code.Unimplemented]: 501,
  [Code.Unavailable]: 503,
  [Code.DeadlineExceeded]: 504,
};

/** The HTTP status of an RPC error code on the REST surface. */
export function httpStatusOf(code: Code): number {
  return googleHttpStatus[code] ?? codeToHttpStatus(code);
}

/** The google.rpc.Code name of a Connect code: `NOT_FOUND`; Google spells CANCELLED with two Ls. */
export function statusName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED";
  return (Code[code] ?? "UNKNOWN").replace(/(?<=[a-z])(?=[A-Z])/g, "_").toUpperCase();
}

const detailsRegistry = createRegistry(file_google_rpc_error_details);
const typeUrlPrefix = "type.googleapis.com/";
/** DebugInfo carries stack entries; REST clients never get them. */
const withheldDetails = new Set(["google.rpc.DebugInfo"]);

/**
 * Google's JSON error body:
 * `{"error": {"code": 404, "message": "...", "status": "NOT_FOUND", "details": [{"@type": ...}]}}`.
 * Details are rendered as google.protobuf.Any JSON; one whose type the service does
 * not know is dropped rather than sent as opaque bytes.
 */
export function errorBody(error: ConnectError, httpStatus: number): JsonObject {
  const details: JsonValue[] = [];
  for (const detail of error.details) {
    const json = detailJson(detail);
    if (json !== undefined) details.push(json);
  }
  const body: JsonObject = { code: httpStatus, message: error.rawMessage, status: statusName(error.code) };
  if (details.length > 0) body.details = details;
  return { error: body };
}

/**
 * The error a client may see for anything thrown. The call pipeline already turns
 * handler failures into ConnectErrors; anything else here is a bug of this layer,
 * and its message (which `ConnectError.from` would copy) must not leak.
 */
export function toPublicError(thrown: unknown): { error: ConnectError; httpStatus: number } {
  if (thrown instanceof RestError)
    return { error: thrown.error, httpStatus: thrown.httpStatus ?? httpStatusOf(thrown.error.code) };
  const error =
    thrown instanceof ConnectError
      ? thrown
      : statusError(Code.Internal, "INTERNAL", "Internal error. Quote the request id when reporting it.");
  return { error, httpStatus: httpStatusOf(error.code) };
}

function detailJson(detail: ConnectError["details"][number]): JsonValue | undefined {
  try {
    if ("desc" in detail) {
      if (withheldDetails.has(detail.desc.typeName)) return undefined;
      const any = anyPack(detail.desc, create(detail.desc, detail.value));
      return typeFirst(toJson(AnySchema, any, { registry: registryFor(detail.desc.typeName, detail.desc) }));
    }
    if (withheldDetails.has(detail.type)) return undefined;
    const any = create(AnySchema, { typeUrl: typeUrlPrefix + detail.type, value: detail.value });
    return typeFirst(toJson(AnySchema, any, { registry: detailsRegistry }));
  } catch {
    // Not in the registry, or bytes that do not decode: leave the detail out.
    return undefined;
  }
}

/** Puts `@type` first, where Google's APIs and readers expect it. */
function typeFirst(json: JsonValue): JsonValue {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return json;
  const { "@type": type, ...rest } = json;
  return { "@type": type ?? null, ...rest };
}

function registryFor(typeName: string, desc: Parameters<typeof createRegistry>[0]): Registry {
  return detailsRegistry.getMessage(typeName) ? detailsRegistry : createRegistry(detailsRegistry, desc);
}
