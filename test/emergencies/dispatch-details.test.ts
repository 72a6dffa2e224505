import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { decodeProtectedHeader, exportSPKI, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmergencyRequestedSchema } from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import { EmergencyKind, EmergencySeverity } from "../../gen/telemed/patient/v1/emergency_pb.js";
import {
  DispatchOpener,
  DispatchSealer,
  dispatchKeyAlgorithm,
  generateDispatchKeys,
} from "../../src/emergencies/dispatch-details.ts";
import type { EmergencyRecord } from "../../src/emergencies/emergency-record.ts";
import { requestedMessage } from "../../src/emergencies/lane-messages.ts";

const record: EmergencyRecord = {
  id: "0193a1b2-0000-7000-8000-000000000001",
  patientId: "0193a1b2-0000-7000-8000-000000000002",
  kind: "stroke",
  severity: "critical",
  priority: 1,
  description: "Face drooping on one side since 10 minutes",
  location: {
    latitude: 12.97,
    longitude: 77.59,
    accuracyMeters: 12,
    address: {
      lines: ["4 Temple Street"],
      locality: "Bengaluru",
      region: "KA",
      postalCode: "560001",
      regionCode: "IN",
    },
    landmark: "opposite the blue gate",
  },
  callbackPhone: "+919811112222",
  state: "dispatch_pending",
  lastSourceSequence: 0,
  timelineLength: 1,
  assignment: null,
  requestedBy: "patients/x",
  requestedByRole: "patient",
  mergedRequestCount: 0,
  cancelledBy: null,
  cancelledByRole: null,
  cancelReason: null,
  version: 1,
  createdAt: new Date(),
  updatedAt: new Date(),
  endedAt: null,
  dispatchedAt: null,
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dispatch-details-"));
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("dispatch details sealed to the Paramedic Service's key (issue #6, safety 2)", () => {
  it("the request carries the name and priority in clear and the details only as a JWE that its key opens", async () => {
    const { sealer, opener } = await generateDispatchKeys();
    const data = await requestedMessage(record, "req-1", sealer);
    const text = Buffer.from(data).toString("latin1");
    for (const secret of [record.description, "4 Temple Street", "opposite the blue gate", "919811112222"]) {
      expect(text).not.toContain(secret);
    }
    const request = fromBinary(EmergencyRequestedSchema, data);
    expect(request.emergency).toBe(`patients/${record.patientId}/emergencies/${record.id}`);
    expect(request.sealedDetailsKeyId).toBe(sealer.keyId);
    expect(decodeProtectedHeader(request.sealedDetails)).toMatchObject({
      alg: dispatchKeyAlgorithm,
      enc: "A256GCM",
      kid: sealer.keyId,
    });
    const details = await opener.open(request.sealedDetails);
    expect(details).toMatchObject({
      kind: EmergencyKind.STROKE,
      severity: EmergencySeverity.CRITICAL,
      description: record.description,
      callbackPhone: record.callbackPhone,
      location: { landmark: "opposite the blue gate", address: { lines: ["4 Temple Street"] } },
    });
  });

  it("another key does not open them, nor does a tampered message", async () => {
    const { sealer, opener } = await generateDispatchKeys();
    const other = await generateDispatchKeys();
    const { sealedDetails } = await sealer.seal(record);
    await expect(other.opener.open(sealedDetails)).rejects.toThrow();
    expect((await opener.open(sealedDetails)).description).toBe(record.description);
    const parts = sealedDetails.split(".");
    parts[3] = `${parts[3]?.slice(0, -2)}AA`;
    await expect(opener.open(parts.join("."))).rejects.toThrow();
  });

  it("loads the Paramedic Service's public key from a JWK or an SPKI PEM file (PARAMEDIC_DISPATCH_KEY_FILE)", async () => {
    const { publicKey, privateKey } = await generateKeyPair(dispatchKeyAlgorithm, { crv: "P-256", extractable: true });
    const pem = join(dir, "paramedic.pem");
    await writeFile(pem, await exportSPKI(publicKey));
    const fromPem = await DispatchSealer.fromFile(pem);
    const opener = new DispatchOpener(privateKey, fromPem.keyId);
    expect((await opener.open((await fromPem.seal(record)).sealedDetails)).description).toBe(record.description);
    const { exportJWK } = await import("jose");
    const jwkFile = join(dir, "paramedic.jwk");
    await writeFile(jwkFile, JSON.stringify(await exportJWK(publicKey)));
    expect((await DispatchSealer.fromFile(jwkFile)).keyId).toBe(fromPem.keyId);
  });

  it("without a key the request goes without details (logged at start by the service)", async () => {
    const request = fromBinary(EmergencyRequestedSchema, await requestedMessage(record, "req-1", undefined));
    expect(request.sealedDetails).toBe("");
    expect(request.priority).toBe(1);
  });
});
