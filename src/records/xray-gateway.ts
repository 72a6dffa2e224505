import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { DownloadImageResponse, XrayService } from "../../gen/telemed/xray/v1/xray_service_pb.js";
import type { Study } from "../../gen/telemed/xray/v1/xray_pb.js";
import { statusError } from "../rpc/error-mapping.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";

/**
 * The X-ray Service as the records context uses it: study metadata when a study is
 * added to a record, and the chunked image download. Its refusals become our errors
 * (messages of ours; nothing the X-ray Service said is passed on), and its outages
 * UNAVAILABLE, which a download client answers by resuming from its last offset.
 */
export class XrayGateway {
  readonly #client: Client<typeof XrayService>;
  readonly #downloadTimeoutMs: number;

  constructor(client: Client<typeof XrayService>, downloadTimeoutMs: number) {
    this.#client = client;
    this.#downloadTimeoutMs = downloadTimeoutMs;
  }

  /** The study with its images; INVALID_ARGUMENT on `field` when the X-ray Service has none by that name. */
  async study(name: string, field: string): Promise<Study> {
    try {
      const { study } = await this.#client.getStudy({ name });
      if (study === undefined) throw new Error("GetStudy answered without a study");
      return study;
    } catch (error) {
      if (ConnectError.from(error).code === Code.NotFound) throw invalidArgument(field, "names no X-ray study");
      throw unavailable(error);
    }
  }

  /** The image's metadata, then its bytes from `offset` in chunks, as the X-ray Service streams them. */
  async *download(
    image: string,
    offset: bigint,
    chunkSize: number,
    signal: AbortSignal,
  ): AsyncGenerator<DownloadImageResponse> {
    try {
      yield* this.#client.downloadImage(
        { name: image, offset, chunkSize },
        { signal, timeoutMs: this.#downloadTimeoutMs },
      );
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (code === Code.OutOfRange) throw offsetPastEnd();
      if (code === Code.NotFound) throw notFound("XrayImage");
      if (signal.aborted) throw error;
      throw unavailable(error);
    }
  }
}

/** OUT_OF_RANGE: the offset is past the end of the file (the contract's answer). */
export function offsetPastEnd(): ConnectError {
  return statusError(Code.OutOfRange, "OFFSET_PAST_END", "The offset is past the end of the image.", [
    { field: "offset", description: "is past the end of the image" },
  ]);
}

function unavailable(cause: unknown): DomainError {
  const error = new DomainError(
    "unavailable",
    "XRAY_SERVICE_UNAVAILABLE",
    "The X-ray Service is not reachable now. Retry shortly; a download resumes from its last offset.",
    { retryAfterSeconds: 1 },
  );
  error.cause = cause;
  return error;
}
