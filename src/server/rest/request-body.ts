import { Code } from "@connectrpc/connect";
import { statusError } from "../../rpc/error-mapping.ts";
import type { HttpRequest } from "../http-types.ts";
import type { BodyBinding } from "./http-routes.ts";
import { invalidArgument, RestError } from "./rest-errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the JSON body a route takes, as text, or undefined when there is none.
 * Refuses, before reading, a declared length over `limit` and a media type other
 * than JSON; refuses a body on a route without one. The limit is also counted while
 * reading, since chunked and HTTP/2 bodies need not declare a length: whatever the
 * client claims, no more than `limit` bytes are ever buffered.
 */
export async function readJsonBody(req: HttpRequest, body: BodyBinding, limit: number): Promise<string | undefined> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const contentType = req.headers["content-type"];
  if (body.kind !== "none" && contentType !== undefined && !isJson(contentType)) throw unsupportedMediaType();

  const bytes = await readAtMost(req, limit);
  if (bytes.length === 0) return undefined;
  if (body.kind === "none") throw invalidArgument("BODY_NOT_ALLOWED", "This method takes no request body.");
  if (contentType === undefined) throw unsupportedMediaType();
  try {
    return utf8.decode(bytes);
  } catch {
    throw invalidArgument("MALFORMED_JSON", "The request body is not valid UTF-8.");
  }
}

/** `application/json`, with no charset or a UTF-8 one (RFC 8259 allows nothing else). */
function isJson(contentType: string): boolean {
  const [type = "", ...params] = contentType.split(";");
  if (type.trim().toLowerCase() !== "application/json") return false;
  return params.every((param) => {
    const [name = "", value = ""] = param.split("=").map((part) => part.trim().toLowerCase());
    return name !== "charset" || value === "utf-8" || value === "utf8" || value === '"utf-8"';
  });
}

function readAtMost(req: HttpRequest, limit: number): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading; the rest is never buffered and the connection is closed after the answer.
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => {
      cleanup();
      reject(new RestError(statusError(Code.Canceled, "CLIENT_CLOSED", "The client closed the request.")));
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}

function tooLarge(limit: number): RestError {
  const error = statusError(
    Code.ResourceExhausted,
    "REQUEST_TOO_LARGE",
    `The request body is larger than ${limit} bytes.`,
  );
  return new RestError(error, { httpStatus: 413, closeConnection: true });
}

function unsupportedMediaType(): RestError {
  const error = statusError(
    Code.InvalidArgument,
    "UNSUPPORTED_MEDIA_TYPE",
    "The request body must be application/json.",
  );
  return new RestError(error, { httpStatus: 415 });
}
