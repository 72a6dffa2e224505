import { readFile } from "node:fs/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  CompactEncrypt,
  compactDecrypt,
  exportJWK,
  generateKeyPair,
  importJWK,
  importSPKI,
  type JWK,
  type KeyObject,
} from "jose";
import {
  type DispatchDetails,
  DispatchDetailsSchema,
} from "../../gen/telemed/patient/events/v1/emergency_events_pb.js";
import type { EmergencyRecord } from "./emergency-record.ts";
import { kindToProto, locationToProto, severityToProto } from "./emergency-mapping.ts";

/** The JWE algorithms of `EmergencyRequested.sealed_details` (emergency_events.proto). */
export const dispatchKeyAlgorithm = "ECDH-ES+A256KW";
const contentEncryption = "A256GCM";
const contentType = "application/protobuf; proto=telemed.patient.events.v1.DispatchDetails";

/** `sealed_details` and `sealed_details_key_id` of a dispatch request. */
export interface SealedDispatchDetails {
  readonly sealedDetails: string;
  readonly keyId: string;
}

/**
 * Seals what responders need (description, location, callback phone, kind, severity)
 * for the Paramedic Service only: a JWE (ECDH-ES+A256KW, A256GCM) to its public key.
 * The Patient Service holds the public key alone, so neither the NATS store, nor
 * anyone reading the stream, nor this service can open a dispatch message once sent;
 * PostgreSQL keeps the emergency itself (sealed at rest, emergency-sealing.ts).
 */
export class DispatchSealer {
  readonly #key: CryptoKey | KeyObject;
  readonly keyId: string;

  private constructor(key: CryptoKey | KeyObject, keyId: string) {
    this.#key = key;
    this.keyId = keyId;
  }

  /** From the Paramedic Service's public key (an EC P-256 or X25519 JWK); its `kid` is the RFC 7638 thumbprint. */
  static async fromJwk(jwk: JWK): Promise<DispatchSealer> {
    const { d: _private, ...publicJwk } = jwk;
    const key = await importJWK(publicJwk, dispatchKeyAlgorithm);
    return new DispatchSealer(key as CryptoKey | KeyObject, await calculateJwkThumbprint(publicJwk));
  }

  /** From PARAMEDIC_DISPATCH_KEY_FILE: a public JWK (JSON) or an SPKI PEM. */
  static async fromFile(path: string): Promise<DispatchSealer> {
    const text = (await readFile(path, "utf8")).trim();
    if (text.startsWith("{")) return DispatchSealer.fromJwk(JSON.parse(text) as JWK);
    const key = await importSPKI(text, dispatchKeyAlgorithm, { extractable: true });
    return DispatchSealer.fromJwk(await exportJWK(key));
  }

  /** The details of an emergency as responders need them, sealed. */
  async seal(record: EmergencyRecord): Promise<SealedDispatchDetails> {
    const details = create(DispatchDetailsSchema, {
      kind: kindToProto(record.kind),
      severity: severityToProto(record.severity),
      description: record.description,
      location: locationToProto(record.location),
      callbackPhone: record.callbackPhone,
    });
    const sealedDetails = await new CompactEncrypt(toBinary(DispatchDetailsSchema, details))
      .setProtectedHeader({ alg: dispatchKeyAlgorithm, enc: contentEncryption, kid: this.keyId, cty: contentType })
      .encrypt(this.#key);
    return { sealedDetails, keyId: this.keyId };
  }
}

/** The Paramedic Service's side: its private key, opening `sealed_details`. */
export class DispatchOpener {
  readonly #key: CryptoKey | KeyObject;
  readonly keyId: string;

  constructor(key: CryptoKey | KeyObject, keyId: string) {
    this.#key = key;
    this.keyId = keyId;
  }

  /** Decrypts and decodes; throws when it was not sealed to this key or was tampered with. */
  async open(sealedDetails: string): Promise<DispatchDetails> {
    const { plaintext } = await compactDecrypt(sealedDetails, this.#key, {
      keyManagementAlgorithms: [dispatchKeyAlgorithm],
      contentEncryptionAlgorithms: [contentEncryption],
    });
    return fromBinary(DispatchDetailsSchema, plaintext);
  }
}

/**
 * A fresh X25519 key pair for the embedded Paramedic simulator: the simulator opens
 * with the private half, the Patient Service seals to the public half. (X25519: about
 * 0.5 ms a seal here, against 0.8 ms for P-256; a real Paramedic Service may use either.)
 */
export async function generateDispatchKeys(): Promise<{ sealer: DispatchSealer; opener: DispatchOpener }> {
  const { publicKey, privateKey } = await generateKeyPair(dispatchKeyAlgorithm, { crv: "X25519", extractable: true });
  const sealer = await DispatchSealer.fromJwk(await exportJWK(publicKey));
  return { sealer, opener: new DispatchOpener(privateKey, sealer.keyId) };
}
