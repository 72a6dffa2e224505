import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { DownloadXrayRequest, DownloadXrayResponse } from "../../gen/telemed/patient/v1/record_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DownloadXrayResponseSchema } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { statusError } from "../rpc/error-mapping.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import type { RecordSealer } from "./record-content.ts";
import type { RecordRepository } from "./record-repository.ts";
import { recordIdsOf } from "./record-rules.ts";
import { offsetPastEnd, type XrayGateway } from "./xray-gateway.ts";

type Part = MessageInitShape<typeof DownloadXrayResponseSchema> | DownloadXrayResponse;

/**
 * DownloadXray (TST-PT004-3): the image of an X-ray study record, streamed from the
 * X-ray Service through our access checks. The pipeline has checked the patient; this
 * checks that the record is theirs and an X-ray study, and that the image is one of
 * its images. The header carries size and SHA-256 of the whole file, so a client that
 * resumes from an offset still verifies the whole; `if_sha256` refuses to mix two
 * versions of a file. A whole download (offset 0) is also checked here before its end.
 */
export class XrayDownloads {
  readonly #em: () => EntityManager;
  readonly #repository: RecordRepository;
  readonly #sealer: RecordSealer;
  readonly #xray: XrayGateway;

  constructor(em: () => EntityManager, repository: RecordRepository, sealer: RecordSealer, xray: XrayGateway) {
    this.#em = em;
    this.#repository = repository;
    this.#sealer = sealer;
    this.#xray = xray;
  }

  async *download(patientId: string, request: DownloadXrayRequest, signal: AbortSignal): AsyncGenerator<Part> {
    const ids = recordIdsOf(request.name);
    if (ids === undefined || !isUuid(ids.patientId) || !isUuid(ids.recordId)) throw notFound("Record");
    const row = await this.#repository.get(this.#em(), patientId, ids.recordId);
    if (row === undefined) throw notFound("Record");
    if (row.kind !== "xray_study") throw invalidArgument("name", "is not an X-ray study record");
    const content = this.#sealer.open(row);
    const study = content.details.case === "xrayStudy" ? content.details.value : undefined;
    const known = study?.images.find((image) => image.image === request.image);
    if (known === undefined) throw invalidArgument("image", "is not an image of this record");
    if (request.offset > known.sizeBytes && known.sizeBytes > 0n) throw offsetPastEnd();

    const chunkSize = request.chunkSize === 0 ? 64 * 1024 : request.chunkSize;
    let expected = request.offset;
    let total = 0n;
    let sha256 = "";
    const whole = request.offset === 0n ? createHash("sha256") : undefined;
    for await (const part of this.#xray.download(request.image, request.offset, chunkSize, signal)) {
      if (part.part.case === "image") {
        const image = part.part.value;
        if (request.ifSha256 !== "" && request.ifSha256 !== image.sha256) {
          throw new DomainError(
            "failed-precondition",
            "XRAY_IMAGE_CHANGED",
            "The image changed since the download began; download it again from the start.",
          );
        }
        total = image.sizeBytes;
        sha256 = image.sha256;
        yield {
          part: {
            case: "header",
            value: {
              contentType: image.contentType,
              totalSizeBytes: image.sizeBytes,
              sha256: image.sha256,
              offset: request.offset,
              fileName: image.fileName,
            },
          },
        };
      } else if (part.part.case === "chunk") {
        const chunk = part.part.value;
        if (sha256 === "" || chunk.offset !== expected) throw corrupted();
        whole?.update(chunk.data);
        expected += BigInt(chunk.data.length);
        yield { part: { case: "chunk", value: { offset: chunk.offset, data: chunk.data } } };
      }
    }
    if (sha256 === "" || expected !== total) throw corrupted();
    if (whole !== undefined && whole.digest("hex") !== sha256) throw corrupted();
  }
}

/** The X-ray Service sent something that does not add up to the file it described. */
function corrupted() {
  return statusError(
    Code.DataLoss,
    "XRAY_DOWNLOAD_CORRUPTED",
    "The image arrived incomplete or altered from the X-ray Service; download it again.",
  );
}
