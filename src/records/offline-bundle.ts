import { create, toJson } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import { CompactEncrypt, importJWK, type JWTPayload } from "jose";
import type { Record as RecordProto } from "../../gen/telemed/patient/v1/record_pb.js";
import {
  type OfflineBundle,
  type OfflineBundlePayload,
  OfflineBundlePayloadSchema,
  OfflineBundleSchema,
} from "../../gen/telemed/patient/v1/record_sync_pb.js";
import { patientToProto } from "../patients/patient-mapping.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import type { Clock } from "../shared/clock.ts";
import { notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { deviceKeyAlgorithm, type Devices } from "./devices.ts";
import { type RecordSealer, recordToProto } from "./record-content.ts";
import { encodeCursor, type RecordFeed } from "./record-feed.ts";
import type { SummarySource } from "./record-reads.ts";
import type { RecordRepository } from "./record-repository.ts";
import { bundleKinds, bundleSummaries, selectCritical } from "./offline-bundle-rules.ts";

/** Signs documents with the service's token key, whose `kid` the JWKS publishes (TokenIssuer). */
export interface DocumentSigner {
  readonly kid: string;
  signDocument(claims: JWTPayload, typ: string): Promise<string>;
}

/** The JWS `typ` of an offline bundle: never an access token's. */
export const bundleType = "telemed-offline-bundle+jwt";
/** Live records of the bundle's kinds read to choose from: far more than any real history holds. */
const bundleReadLimit = 2000;

/** What the offline bundle needs. */
export interface OfflineBundleDeps {
  readonly em: () => EntityManager;
  readonly repository: RecordRepository;
  readonly sealer: RecordSealer;
  readonly feed: RecordFeed;
  readonly devices: Devices;
  readonly summaries: SummarySource;
  readonly patients: PatientRepository;
  readonly signer: DocumentSigner;
  readonly clock: Clock;
  /** RECORD_OFFLINE_BUNDLE_TTL_SECONDS. */
  readonly ttlSeconds: number;
}

/**
 * GetOfflineBundle (TST-PT007-1): the patient's critical records and emergency
 * details, signed as a JWS by the service's signing key so a device with no connection
 * verifies it against the JWKS it fetched earlier. The JWS payload is the proto JSON of
 * OfflineBundlePayload plus the registered claims `iss`, `sub` (the patient), `iat` and
 * `exp` (equal to issue_time and expire_time); parse it with `ignoreUnknownFields`.
 * Named a device, the JWS is encrypted to the device's key (JWE, ECDH-ES+A256KW,
 * A256GCM, `kid` the key's thumbprint) and nothing else is sent in the clear.
 */
export class OfflineBundles {
  readonly #d: OfflineBundleDeps;

  constructor(deps: OfflineBundleDeps) {
    this.#d = deps;
  }

  async get(patientId: string, deviceId: string | undefined): Promise<OfflineBundle> {
    if (!isUuid(patientId)) throw notFound("Patient");
    const em = this.#d.em();
    const device = deviceId === undefined ? undefined : await this.#d.devices.keyOf(em, patientId, deviceId);
    // The cursor first: a change committed while the records are read is then pulled
    // again after the bundle (harmless) instead of being missed.
    await this.#d.feed.catchUpSummaries(em, patientId);
    const head = await this.#d.feed.head(em, patientId);
    const patient = patientToProto(await this.#d.patients.get(patientId));
    const issuedAt = Math.floor(this.#d.clock.now().getTime() / 1000);
    const payload = await this.#payload(em, patientId, head, issuedAt);
    payload.legalName = patient.legalName;
    payload.birthDate = patient.birthDate;
    payload.sex = patient.sex;
    payload.emergencyContacts = patient.emergencyContacts;

    const claims = toJson(OfflineBundlePayloadSchema, payload) as JWTPayload;
    const jws = await this.#d.signer.signDocument(
      { ...claims, sub: `patients/${patientId}`, iat: issuedAt, exp: issuedAt + this.#d.ttlSeconds },
      bundleType,
    );
    if (device === undefined) {
      return create(OfflineBundleSchema, {
        name: `patients/${patientId}/offlineBundle`,
        jws,
        signingKeyId: this.#d.signer.kid,
        payload,
      });
    }
    const jwe = await new CompactEncrypt(new TextEncoder().encode(jws))
      .setProtectedHeader({ alg: deviceKeyAlgorithm, enc: "A256GCM", kid: device.thumbprint, cty: "JWT" })
      .encrypt(await importJWK(device.jwk, deviceKeyAlgorithm));
    await this.#d.devices.seen(em, deviceId as string);
    return create(OfflineBundleSchema, {
      name: `patients/${patientId}/offlineBundle`,
      jwe,
      signingKeyId: this.#d.signer.kid,
      device: device.name,
    });
  }

  /** The records part of the payload, with issue and expiry times and the cursor. */
  async #payload(em: EntityManager, patientId: string, head: number, issuedAt: number): Promise<OfflineBundlePayload> {
    const issuedMs = issuedAt * 1000;
    const rows = await this.#d.repository.liveOfKinds(em, patientId, bundleKinds, bundleReadLimit);
    const records = rows.map((row) => recordToProto(row, this.#d.sealer.open(row)));
    const critical = selectCritical(records, new Date(issuedMs));
    return create(OfflineBundlePayloadSchema, {
      patient: `patients/${patientId}`,
      bloodGroup: critical.bloodGroup,
      allergies: critical.allergies,
      conditions: critical.conditions,
      currentMedications: critical.currentMedications,
      immunizations: critical.immunizations,
      recentConsultationSummaries: await this.#recentSummaries(em, patientId),
      issueTime: timestampFromMs(issuedMs),
      expireTime: timestampFromMs(issuedMs + this.#d.ttlSeconds * 1000),
      cursor: encodeCursor(patientId, head),
    });
  }

  async #recentSummaries(em: EntityManager, patientId: string): Promise<RecordProto[]> {
    const entries = await this.#d.repository.timeline(em, {
      patientId,
      kinds: [],
      summaries: true,
      startTime: undefined,
      endTime: undefined,
      consultationId: undefined,
      after: undefined,
      limit: bundleSummaries,
    });
    const byConsultation = await this.#d.summaries.recordsOf(
      em,
      entries.flatMap((entry) => (entry.consultationId === null ? [] : [entry.consultationId])),
    );
    return entries.flatMap((entry) => {
      const summary = entry.consultationId === null ? undefined : byConsultation.get(entry.consultationId);
      return summary === undefined ? [] : [summary];
    });
  }
}
