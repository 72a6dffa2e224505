import { createHash, randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordKind, RecordSource } from "../../gen/telemed/patient/v1/record_pb.js";
import { RecordService } from "../../gen/telemed/patient/v1/record_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DownloadXrayRequestSchema } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { refusal } from "../consultations/consultation-fixtures.ts";
import { bearer, signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { addRecord, type RecordClient, recordTestEnv, records, xrayServiceToken } from "./record-fixtures.ts";

let t: TestApp;
let patient: TestSession;
let other: TestSession;
let xrayService: RecordClient;
/** The X-ray study record, and the name of its first image. */
let record: string;
let image: string;

const sim = () => t.app.siblings.simulators!.xray;

beforeAll(async () => {
  t = await startTestApp(recordTestEnv);
  [patient, other] = await Promise.all([signUpPatient(t), signUpPatient(t)]);
  xrayService = records(t, await xrayServiceToken(t));
  const study = sim().addStudy({ patientReference: patient.patient, bodyPart: "chest", view: "PA", imageCount: 2 });
  const created = await addRecord(xrayService, patient.patient, {
    details: { case: "xrayStudy", value: { study: study.name, findings: "No acute findings." } },
  });
  record = created.name;
  image = study.images[0]?.name ?? "";
  expect(created).toMatchObject({ kind: RecordKind.XRAY_STUDY, source: RecordSource.SERVICE });
  expect(created.details.case === "xrayStudy" && created.details.value.images.map((i) => i.image)).toEqual(
    study.images.map((i) => i.name),
  );
}, 120_000);
afterAll(async () => {
  await t?.close();
});

/** Reads a download to its end (or its failure): the header, the bytes, and the error if any. */
async function download(client: RecordClient, request: MessageInitShape<typeof DownloadXrayRequestSchema>) {
  let header: { sha256: string; totalSizeBytes: bigint; offset: bigint; contentType: string } | undefined;
  const chunks: Buffer[] = [];
  let error: ConnectError | undefined;
  try {
    for await (const message of client.downloadXray(request)) {
      if (message.part.case === "header") header = message.part.value;
      else if (message.part.case === "chunk") chunks.push(Buffer.from(message.part.value.data));
    }
  } catch (thrown) {
    error = ConnectError.from(thrown);
  }
  return { header, bytes: Buffer.concat(chunks), error };
}

describe("TST-PT004-3 a patient downloads an X-ray from their record", () => {
  it("streams the simulator's image bytes with a SHA-256 the client verifies", async () => {
    const { bytes: expected, image: metadata } = sim().file(image);
    const { header, bytes, error } = await download(records(t, patient), { name: record, image, chunkSize: 16 * 1024 });
    expect(error).toBeUndefined();
    expect(header).toMatchObject({ contentType: "image/png", totalSizeBytes: BigInt(expected.length), offset: 0n });
    expect(bytes.equals(expected)).toBe(true);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(header?.sha256);
    expect(header?.sha256).toBe(metadata.sha256);
    expect(bytes.subarray(1, 4).toString("latin1")).toBe("PNG");
  });

  it("resumes an interrupted download from the last offset received, and the whole verifies", async () => {
    const { bytes: expected } = sim().file(image);
    sim().interruptNextDownload(100_000);
    const first = await download(records(t, patient), { name: record, image, chunkSize: 32 * 1024 });
    expect(first.error?.code).toBe(Code.Unavailable);
    expect(first.bytes.length).toBeGreaterThan(0);
    expect(first.bytes.length).toBeLessThan(expected.length);
    const rest = await download(records(t, patient), {
      name: record,
      image,
      offset: BigInt(first.bytes.length),
      ifSha256: first.header?.sha256 ?? "",
    });
    expect(rest.error).toBeUndefined();
    expect(rest.header?.offset).toBe(BigInt(first.bytes.length));
    const whole = Buffer.concat([first.bytes, rest.bytes]);
    expect(whole.equals(expected)).toBe(true);
    expect(createHash("sha256").update(whole).digest("hex")).toBe(rest.header?.sha256);
  });

  it("works over gRPC too (server streaming over HTTP/2)", async () => {
    const grpc = createClient(
      RecordService,
      createGrpcTransport({ baseUrl: t.baseUrl, interceptors: [bearer(patient.accessToken)] }),
    );
    const { bytes, error } = await download(grpc, { name: record, image });
    expect(error).toBeUndefined();
    expect(bytes.equals(sim().file(image).bytes)).toBe(true);
  });

  it("refuses offsets past the end, a changed file, foreign images and other patients", async () => {
    const size = sim().file(image).bytes.length;
    const mine = records(t, patient);
    const at = (request: { offset?: bigint; ifSha256?: string; image?: string }) =>
      download(mine, { name: record, image, ...request });
    expect((await at({ offset: BigInt(size + 1) })).error?.code).toBe(Code.OutOfRange);
    const atEnd = await at({ offset: BigInt(size) });
    expect(atEnd.error).toBeUndefined();
    expect(atEnd.bytes.length).toBe(0);
    expect((await at({ ifSha256: "0".repeat(64) })).error?.code).toBe(Code.FailedPrecondition);
    const foreign = sim().addStudy({ patientReference: other.patient });
    expect((await at({ image: foreign.images[0]?.name ?? "" })).error?.code).toBe(Code.InvalidArgument);
    expect((await download(records(t, other), { name: record, image })).error?.code).toBe(Code.NotFound);
    const note = await addRecord(mine, patient.patient, { details: { case: "patientNote", value: { text: "x" } } });
    expect((await download(mine, { name: note.name, image })).error?.code).toBe(Code.InvalidArgument);
  });

  it("links only the patient's own studies to their records", async () => {
    const foreign = sim().addStudy({ patientReference: other.patient });
    const error = await refusal(
      xrayService.createRecord({
        parent: patient.patient,
        record: { details: { case: "xrayStudy", value: { study: foreign.name } } },
        requestId: randomUUID(),
      }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
  });
});
