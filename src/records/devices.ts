import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import { calculateJwkThumbprint, importJWK, type JWK } from "jose";
import { type Device, Device_Platform, DeviceSchema } from "../../gen/telemed/patient/v1/record_sync_pb.js";
import type { CallAudit } from "../audit/call-audit.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import type { Clock } from "../shared/clock.ts";
import type { EnvelopeCipher } from "../shared/crypto/envelope.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import { isUuid, uuidV7 } from "../shared/uuid-v7.ts";
import type { DeviceRepository, DeviceRow } from "./device-repository.ts";
import type { RecordRepository } from "./record-repository.ts";
import type { DevicePlatformName } from "./record-sync-entities.ts";

/** The JWE key management algorithm of offline bundles encrypted to a device. */
export const deviceKeyAlgorithm = "ECDH-ES+A256KW";
/** Devices one patient may register: each receives the records, so they are few and deliberate. */
export const maxDevicesPerPatient = 20;

const defaultPageSize = 25;
const table = "patient_devices";
const pushTokenColumn = "push_token_sealed";

const platformNames: Readonly<Record<Exclude<Device_Platform, Device_Platform.UNSPECIFIED>, DevicePlatformName>> = {
  [Device_Platform.ANDROID]: "android",
  [Device_Platform.IOS]: "ios",
  [Device_Platform.WEB]: "web",
  [Device_Platform.FIELD_DEVICE]: "field_device",
};

/** A device's public key as stored, ready for encryption. */
export interface DeviceKey {
  readonly name: string;
  readonly jwk: JWK;
  readonly thumbprint: string;
}

/**
 * RegisterDevice, ListDevices and DeleteDevice: a patient's devices and their public
 * keys (EC P-256 or X25519 JWKs, for ECDH-ES), to which offline bundles are encrypted.
 * The pipeline admitted the caller for this patient; the push token is sealed at rest.
 */
export class Devices {
  readonly #em: () => EntityManager;
  readonly #repository: DeviceRepository;
  readonly #records: RecordRepository;
  readonly #cipher: EnvelopeCipher;
  readonly #clock: Clock;

  constructor(
    em: () => EntityManager,
    repository: DeviceRepository,
    records: RecordRepository,
    cipher: EnvelopeCipher,
    clock: Clock,
  ) {
    this.#em = em;
    this.#repository = repository;
    this.#records = records;
    this.#cipher = cipher;
    this.#clock = clock;
  }

  async register(
    patientId: string,
    device: Device,
    requestId: string,
    registeredBy: string,
    audit: CallAudit | undefined,
  ): Promise<Device> {
    const em = this.#em();
    if (!isUuid(patientId) || !(await this.#records.patientExists(em, patientId))) throw notFound("Patient");
    const jwk = await publicKeyOf(device.publicKeyJwk);
    const thumbprint = await calculateJwkThumbprint(jwk);
    const replayed = await this.#repository.findByRequest(em, patientId, requestId);
    if (replayed !== undefined) return this.#replay(replayed, thumbprint);
    if ((await this.#repository.count(em, patientId)) >= maxDevicesPerPatient) {
      throw new DomainError(
        "resource-exhausted",
        "DEVICE_LIMIT_REACHED",
        `A patient may register at most ${maxDevicesPerPatient} devices. Delete one first.`,
      );
    }
    const now = this.#clock.now();
    const id = uuidV7(now.getTime());
    const key = this.#cipher.newDataKey({ table, row: id });
    return em.transactional(async (tx) => {
      const inserted = await this.#repository.insert(tx, {
        id,
        patientId,
        displayName: device.displayName,
        platform: platformNames[device.platform as keyof typeof platformNames],
        publicKeyJwk: JSON.stringify(jwk),
        keyThumbprint: thumbprint,
        pushTokenSealed: device.pushToken === "" ? null : key.sealText(pushTokenColumn, device.pushToken),
        dataKeyWrapped: key.wrapped,
        createRequestId: requestId,
        createdBy: registeredBy,
        now,
      });
      const row = await this.#repository.findByRequest(tx, patientId, requestId);
      if (row === undefined) throw new Error("the inserted device is not there");
      if (!inserted) return this.#replay(row, thumbprint);
      await audit?.within(tx, { resource: deviceName(patientId, id) });
      return this.#toProto(row);
    });
  }

  async list(patientId: string, pageSize: number, pageToken: string): Promise<{ devices: Device[]; next: string }> {
    if (!isUuid(patientId)) throw notFound("Patient");
    const scope = `devices|${patientId}`;
    const cursor = decodePageToken(scope, pageToken);
    const size = pageSize === 0 ? defaultPageSize : pageSize;
    const after = cursor === undefined ? undefined : { createdMs: Number(cursor.t), id: String(cursor.i) };
    const rows = await this.#repository.list(this.#em(), patientId, after, size + 1);
    const page = rows.slice(0, size);
    const last = page.at(-1);
    const next =
      rows.length > size && last !== undefined
        ? encodePageToken(scope, { t: new Date(last.created_at).getTime(), i: last.id })
        : "";
    return { devices: page.map((row) => this.#toProto(row)), next };
  }

  async delete(patientId: string, deviceId: string, audit: CallAudit | undefined): Promise<void> {
    if (!isUuid(patientId) || !isUuid(deviceId)) throw notFound("Device");
    await this.#em().transactional(async (tx) => {
      if (!(await this.#repository.delete(tx, patientId, deviceId))) throw notFound("Device");
      await audit?.within(tx);
    });
  }

  /** The key a bundle for this device is encrypted to; NOT_FOUND for another patient's or a deleted device. */
  async keyOf(em: EntityManager, patientId: string, deviceId: string): Promise<DeviceKey> {
    const row = isUuid(deviceId) ? await this.#repository.get(em, patientId, deviceId) : undefined;
    if (row === undefined) throw notFound("Device");
    return {
      name: deviceName(patientId, row.id),
      jwk: JSON.parse(row.public_key_jwk) as JWK,
      thumbprint: row.key_thumbprint,
    };
  }

  /** Notes that the device fetched a bundle. */
  async seen(em: EntityManager, deviceId: string): Promise<void> {
    await this.#repository.touch(em, deviceId, this.#clock.now());
  }

  /** A retried RegisterDevice: the first result, unless the request id was used for another key. */
  #replay(row: DeviceRow, thumbprint: string): Device {
    if (row.key_thumbprint !== thumbprint) {
      throw new DomainError(
        "invalid-argument",
        "REQUEST_ID_REUSED",
        "This request_id was already used to register another device key.",
        { violations: [{ field: "request_id", description: "was used for another device" }] },
      );
    }
    return this.#toProto(row);
  }

  #toProto(row: DeviceRow): Device {
    const key = this.#cipher.openDataKey(row.data_key_wrapped, { table, row: row.id });
    const platform = Object.entries(platformNames).find(([, name]) => name === row.platform)?.[0];
    return create(DeviceSchema, {
      name: deviceName(row.patient_id, row.id),
      displayName: row.display_name,
      platform: Number(platform ?? Device_Platform.UNSPECIFIED) as Device_Platform,
      publicKeyJwk: row.public_key_jwk,
      pushToken: row.push_token_sealed === null ? "" : key.openText(pushTokenColumn, row.push_token_sealed),
      keyThumbprint: row.key_thumbprint,
      createTime: timestampFromMs(new Date(row.created_at).getTime()),
      lastSeenTime: row.last_seen_at === null ? undefined : timestampFromMs(new Date(row.last_seen_at).getTime()),
      etag: `v${row.version}`,
    });
  }
}

/** `patients/{p}/devices/{d}`. */
export function deviceName(patientId: string, deviceId: string): string {
  return `patients/${patientId}/devices/${deviceId}`;
}

/** `{p}` and `{d}` of `patients/{p}/devices/{d}`; undefined for anything else. */
export function deviceIdsOf(name: string): { patientId: string; deviceId: string } | undefined {
  const match = /^patients\/([A-Za-z0-9_-]{1,64})\/devices\/([A-Za-z0-9_-]{1,64})$/.exec(name);
  return match === null ? undefined : { patientId: match[1] as string, deviceId: match[2] as string };
}

const field = "device.public_key_jwk";

/**
 * The public members of a device key: an EC P-256 or X25519 public JWK that imports
 * for ECDH-ES. A JWK carrying a private part (`d`) is refused, so a client that sent
 * its private key by mistake learns so instead of having it stored.
 */
export async function publicKeyOf(text: string): Promise<JWK> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidArgument(field, "must be a JSON Web Key (JSON)");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw invalidArgument(field, "must be a JSON Web Key object");
  }
  const given = parsed as Record<string, unknown>;
  if ("d" in given) throw invalidArgument(field, "must be a public key: never send the private key (`d`)");
  let jwk: JWK;
  if (given.kty === "EC" && given.crv === "P-256" && typeof given.x === "string" && typeof given.y === "string") {
    jwk = { kty: "EC", crv: "P-256", x: given.x, y: given.y };
  } else if (given.kty === "OKP" && given.crv === "X25519" && typeof given.x === "string") {
    jwk = { kty: "OKP", crv: "X25519", x: given.x };
  } else {
    throw invalidArgument(field, "must be an EC P-256 or OKP X25519 public key");
  }
  try {
    await importJWK(jwk, deviceKeyAlgorithm);
  } catch {
    throw invalidArgument(field, "is not a valid point on its curve");
  }
  return jwk;
}
