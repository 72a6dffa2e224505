import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DownloadImageRequestSchema,
  type DownloadImageResponse,
  XrayService,
} from "../../gen/telemed/xray/v1/xray_service_pb.js";
import { createGrpcJsClient } from "../support/grpc-js-client.ts";
import { describeRefusal, refusal, type SimulatorHarness, startHarness } from "./simulator-fixtures.ts";

const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

let h: SimulatorHarness;
let imageName: string;
beforeAll(async () => {
  h = await startHarness();
  const study = h.sims.xray.addStudy({ patientReference: "patients/xray-test", bodyPart: "chest", view: "PA" });
  imageName = study.images[0]!.name;
});
afterAll(async () => {
  await h?.close();
});

/** Downloads from `offset`; returns the metadata, the chunks' offsets and the bytes, or the error that ended it. */
async function download(offset: number, chunkSize = 0) {
  let metadata: DownloadImageResponse["part"]["value"] | undefined;
  const offsets: number[] = [];
  const parts: Uint8Array[] = [];
  let error: ConnectError | undefined;
  try {
    for await (const message of h.clients.xray.downloadImage({ name: imageName, offset: BigInt(offset), chunkSize })) {
      if (message.part.case === "image") metadata = message.part.value;
      else if (message.part.case === "chunk") {
        offsets.push(Number(message.part.value.offset));
        parts.push(message.part.value.data);
      }
    }
  } catch (e) {
    error = ConnectError.from(e);
  }
  const image = metadata?.$typeName === "telemed.xray.v1.Image" ? metadata : undefined;
  return { image, offsets, bytes: Buffer.concat(parts), error };
}

describe("x-ray studies", () => {
  it("lists a patient's studies newest first and reads a study and an image", async () => {
    h.sims.xray.addStudy({ patientReference: "patients/xray-list", acquireTime: new Date("2029-01-01T00:00:00Z") });
    h.sims.xray.addStudy({
      patientReference: "patients/xray-list",
      bodyPart: "knee",
      acquireTime: new Date("2029-06-01T00:00:00Z"),
    });
    const page = await h.clients.xray.listStudies({ patientReference: "patients/xray-list", pageSize: 1 });
    expect(page.studies[0]?.bodyPart).toBe("knee");
    const rest = await h.clients.xray.listStudies({
      patientReference: "patients/xray-list",
      pageToken: page.nextPageToken,
    });
    expect(rest.studies.map((s) => s.bodyPart)).toEqual(["chest"]);
    expect(rest.nextPageToken).toBe("");

    const { study } = await h.clients.xray.getStudy({ name: page.studies[0]!.name });
    expect(study?.patientReference).toBe("patients/xray-list");
    const { image } = await h.clients.xray.getImage({ name: imageName });
    expect(image).toMatchObject({ contentType: "image/png", widthPx: 768, heightPx: 640 });
    expect(Number(image!.sizeBytes)).toBeGreaterThan(200_000);
    expect((await h.clients.xray.listStudies({ patientReference: "patients/nobody" })).studies).toEqual([]);
  });
});

describe("x-ray download", () => {
  it("streams the metadata, then 64 KiB chunks in order; the bytes are a PNG whose SHA-256 matches", async () => {
    const { image, offsets, bytes, error } = await download(0);
    expect(error).toBeUndefined();
    expect(bytes.length).toBe(Number(image!.sizeBytes));
    expect(sha256(bytes)).toBe(image!.sha256);
    expect(bytes.subarray(0, 8).equals(pngSignature)).toBe(true);
    expect(bytes.subarray(12, 16).toString("latin1")).toBe("IHDR");
    expect(offsets.slice(0, 3)).toEqual([0, 65536, 131072]);
  });

  it("resumes from an offset: the rest appended to the first part verifies against the same SHA-256", async () => {
    const whole = h.sims.xray.file(imageName).bytes;
    const cut = 100_003;
    const resumed = await download(cut, 4096);
    expect(resumed.offsets[0]).toBe(cut);
    expect(resumed.offsets[1]).toBe(cut + 4096);
    const reassembled = Buffer.concat([whole.subarray(0, cut), resumed.bytes]);
    expect(sha256(reassembled)).toBe(resumed.image!.sha256);
  });

  it("resumes after a download that breaks part-way (UNAVAILABLE), verified over the reassembled bytes", async () => {
    h.sims.xray.interruptNextDownload(3 * 65536);
    const first = await download(0);
    expect(first.error?.code).toBe(Code.Unavailable);
    expect(first.bytes.length).toBe(3 * 65536);
    const rest = await download(first.bytes.length);
    expect(rest.error).toBeUndefined();
    const whole = Buffer.concat([first.bytes, rest.bytes]);
    expect(sha256(whole)).toBe(first.image!.sha256);
    expect(whole.subarray(0, 8).equals(pngSignature)).toBe(true);
  });

  it("an offset at the end sends only the metadata; past the end is OUT_OF_RANGE; a bad chunk size INVALID_ARGUMENT", async () => {
    const size = h.sims.xray.file(imageName).bytes.length;
    const atEnd = await download(size);
    expect(atEnd.error).toBeUndefined();
    expect(atEnd.offsets).toEqual([]);
    const past = await download(size + 1);
    expect(describeRefusal(past.error!)).toMatchObject({ code: "OutOfRange", reason: "OFFSET_PAST_END" });
    const tiny = await download(0, 100);
    expect(describeRefusal(tiny.error!).code).toBe("InvalidArgument");
    const missing = await refusal(h.clients.xray.getImage({ name: "studies/nope/images/1" }));
    expect(describeRefusal(missing)).toMatchObject({ code: "NotFound", domain: "xray.telemed.example" });
  });

  it("serves the same stream to a plain @grpc/grpc-js client", async () => {
    const client = createGrpcJsClient(XrayService, h.sims.url.replace("http://", ""));
    try {
      // A grpc-js client serialises with protobuf-es, so the request must be a created message.
      const request = create(DownloadImageRequestSchema, { name: imageName, chunkSize: 1024 * 1024 });
      const stub = client as unknown as Record<
        string,
        (r: unknown) => grpc.ClientReadableStream<DownloadImageResponse>
      >;
      const call = stub.downloadImage!.call(client, request);
      const parts: Uint8Array[] = [];
      let sha = "";
      for await (const message of call) {
        if (message.part.case === "image") sha = message.part.value.sha256;
        if (message.part.case === "chunk") parts.push(message.part.value.data);
      }
      expect(parts.length).toBe(1); // the whole file fits one 1 MiB chunk
      expect(sha256(Buffer.concat(parts))).toBe(sha);
    } finally {
      client.close();
    }
  });
});
