import { randomUUID, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import type { PrincipalRole } from "./principal.ts";

/** Where tokens come from and whom they are for. */
export interface TokenSettings {
  readonly issuer: string;
  readonly audience: string;
  /** Lifetime of an access token, in seconds. */
  readonly accessTokenTtlSeconds: number;
}

/** The claims of an access token, beyond iss/aud/iat/exp/jti. */
export interface AccessClaims {
  /** `accounts/{id}` or `services/{client_id}`. */
  readonly subject: string;
  readonly role: PrincipalRole;
  /** The patient id of a patient's account. */
  readonly patientId?: string;
  /** The session; absent for service tokens. */
  readonly sessionId?: string;
  /** False for a patient who must enrol in MFA first. */
  readonly fullAccess: boolean;
}

/** The JWT `typ` of access tokens (RFC 9068): refresh and other tokens never carry it. */
export const accessTokenType = "at+jwt";
export const signingAlgorithm = "EdDSA";

/**
 * Signs access tokens with the service's Ed25519 key (EdDSA), naming the key by its
 * JWK thumbprint (`kid`) so sibling services pick the right key from the JWKS
 * document during a key rotation.
 */
export class TokenIssuer {
  readonly #key: KeyObject;
  readonly #settings: TokenSettings;
  readonly kid: string;
  readonly jwks: { readonly keys: readonly JWK[] };

  private constructor(key: KeyObject, settings: TokenSettings, kid: string, jwks: { keys: JWK[] }) {
    this.#key = key;
    this.#settings = settings;
    this.kid = kid;
    this.jwks = jwks;
  }

  static async create(privateKey: KeyObject, publicKey: KeyObject, settings: TokenSettings): Promise<TokenIssuer> {
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    return new TokenIssuer(privateKey, settings, kid, { keys: [{ ...jwk, kid, alg: signingAlgorithm, use: "sig" }] });
  }

  get settings(): TokenSettings {
    return this.#settings;
  }

  /**
   * Signs a document other than an access token (for example the records' offline
   * bundle) with the same key and `kid`, so holders verify it against the same JWKS.
   * Its own `typ` keeps it from ever passing as an access token (the verifier demands
   * `at+jwt`); the issuer is set here, the other claims are the caller's.
   */
  async signDocument(claims: JWTPayload, typ: string): Promise<string> {
    if (typ === accessTokenType) throw new Error("signDocument never signs access tokens");
    return new SignJWT(claims)
      .setProtectedHeader({ alg: signingAlgorithm, kid: this.kid, typ })
      .setIssuer(this.#settings.issuer)
      .sign(this.#key);
  }

  /** A signed access token and when it expires. */
  async issue(claims: AccessClaims, now: Date): Promise<{ token: string; expiresAt: Date }> {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresAt = issuedAt + this.#settings.accessTokenTtlSeconds;
    const token = await new SignJWT({
      role: claims.role,
      ...(claims.patientId === undefined ? {} : { pid: claims.patientId }),
      ...(claims.sessionId === undefined ? {} : { sid: claims.sessionId }),
      scope: claims.fullAccess ? "full" : "mfa_enrollment",
    })
      .setProtectedHeader({ alg: signingAlgorithm, kid: this.kid, typ: accessTokenType })
      .setIssuer(this.#settings.issuer)
      .setAudience(this.#settings.audience)
      .setSubject(claims.subject)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(this.#key);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }
}
