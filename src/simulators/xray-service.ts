import { timestampMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import type { XrayService } from "../../gen/telemed/xray/v1/xray_service_pb.js";
import type { ServiceHandlers } from "./grpc-js-service.ts";
import { pageOf } from "./paging.ts";
import { SimulatorError } from "./simulator-errors.ts";
import type { XraySimulator } from "./xray-simulator.ts";

const defaultChunkBytes = 64 * 1024;

/** The XrayService RPCs over an XraySimulator, with the chunked, resumable download. */
export function xrayHandlers(xray: XraySimulator): ServiceHandlers<typeof XrayService> {
  return {
    getStudy(request) {
      return { study: xray.study(request.name) };
    },

    listStudies(request) {
      const studies = xray.studies(request.patientReference);
      const position = (s: (typeof studies)[number]) =>
        `${String(timestampMs(s.acquireTime!)).padStart(15, "0")}|${s.name}`;
      const page = pageOf(studies, request, {
        scope: request.patientReference,
        defaultSize: 25,
        maxSize: 100,
        cursorOf: position,
        isAfter: (s, cursor) => position(s) < cursor, // newest first
      });
      return { studies: page.items, nextPageToken: page.nextPageToken };
    },

    getImage(request) {
      return { image: xray.image(request.name) };
    },

    /**
     * The image's metadata (size and SHA-256 of the whole file, so a client that
     * resumes can still verify the whole), then the bytes from `offset` in chunks.
     * An offset equal to the size sends the metadata and no chunk: nothing is left.
     */
    async *downloadImage(request, context) {
      const { image, bytes } = xray.file(request.name);
      const offset = Number(request.offset);
      if (offset > bytes.length) {
        throw new SimulatorError(
          grpc.status.OUT_OF_RANGE,
          "OFFSET_PAST_END",
          `Offset ${offset} is past the end of the ${bytes.length}-byte file.`,
          { metadata: { size_bytes: String(bytes.length) } },
        );
      }
      const chunkBytes = request.chunkSize === 0 ? defaultChunkBytes : request.chunkSize;
      const interruptAfter = xray.takeInterruption();
      yield { part: { case: "image", value: image } };
      for (let at = offset; at < bytes.length && !context.signal.aborted; at += chunkBytes) {
        if (interruptAfter !== undefined && at - offset >= interruptAfter) {
          throw new SimulatorError(
            grpc.status.UNAVAILABLE,
            "DOWNLOAD_INTERRUPTED",
            "The download was interrupted; resume from the last offset received.",
          );
        }
        yield { part: { case: "chunk", value: { offset: BigInt(at), data: bytes.subarray(at, at + chunkBytes) } } };
      }
    },
  };
}
