import { createHash, randomUUID } from "node:crypto";
import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type Record as RecordProto, RecordSchema } from "../../gen/telemed/patient/v1/record_pb.js";
import { RecordService } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { authClient, bearer, type TestSession } from "../support/auth-fixtures.ts";
import type { TestApp } from "../support/test-app.ts";

export type RecordClient = Client<typeof RecordService>;

/** A RecordService client with this bearer token, over Connect (binary: DownloadXray streams bytes). */
export function records(t: TestApp, session: TestSession | string): RecordClient {
  const token = typeof session === "string" ? session : session.accessToken;
  return createClient(
    RecordService,
    createConnectTransport({
      baseUrl: t.baseUrl,
      httpVersion: "1.1",
      useBinaryFormat: true,
      interceptors: [bearer(token)],
    }),
  );
}

/** The sibling service allowed service tokens in record tests, and its secret. */
export const xrayServiceSecret = "x-ray-service-secret-0123456789abcdefghij";
export const recordTestEnv = {
  SERVICE_CLIENTS: `xray-service=${createHash("sha256").update(xrayServiceSecret).digest("hex")}`,
};

/** A service token of the X-ray Service (needs `recordTestEnv`). */
export async function xrayServiceToken(t: TestApp): Promise<string> {
  const issued = await authClient(t).issueServiceToken({ clientId: "xray-service", clientSecret: xrayServiceSecret });
  return issued.accessToken;
}

type RecordInit = MessageInitShape<typeof RecordSchema>;

/** Creates a record for `patient` as `client`, with a fresh request id. */
export async function addRecord(client: RecordClient, patient: string, record: RecordInit): Promise<RecordProto> {
  const { record: created } = await client.createRecord({ parent: patient, record, requestId: randomUUID() });
  if (created === undefined) throw new Error("no record in the answer");
  return created;
}

const day = 86_400_000;

/** Effective `daysAgo` days ago. */
export function daysAgo(days: number) {
  return timestampFromMs(Date.now() - days * day);
}

export function prescription(medicine: string, days = 1): RecordInit {
  return {
    effectiveTime: daysAgo(days),
    details: {
      case: "prescription",
      value: {
        medication: { system: "http://www.nlm.nih.gov/research/umls/rxnorm", code: "197361", display: medicine },
        dose: { value: "500", unit: "mg" },
        frequency: "twice daily after meals",
        durationDays: 5,
        prescriber: "doctors/asha-rao",
      },
    },
  };
}

export function allergy(substance: string, days = 1): RecordInit {
  return {
    effectiveTime: daysAgo(days),
    details: { case: "allergy", value: { substance: { display: substance }, active: true, reactions: ["hives"] } },
  };
}

export function testResult(display: string, days = 1): RecordInit {
  return {
    effectiveTime: daysAgo(days),
    details: {
      case: "testResult",
      value: { test: { system: "http://loinc.org", code: "2345-7", display }, value: { case: "text", value: "5.4" } },
    },
  };
}

export function note(text: string, days = 0): RecordInit {
  return { effectiveTime: daysAgo(days), details: { case: "patientNote", value: { text } } };
}

export function toRecord(init: RecordInit): RecordProto {
  return create(RecordSchema, init);
}
