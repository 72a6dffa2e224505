import type { KeyObject } from "node:crypto";
import { errors, jwtVerify } from "jose";
import { DomainError } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import type { Principal, PrincipalRole } from "./principal.ts";
import type { SessionStates } from "./session-states.ts";
import { accessTokenType, signingAlgorithm, type TokenSettings } from "./token-issuer.ts";

interface Verified {
  readonly principal: Principal;
  readonly accountId: string | undefined;
  readonly issuedAt: number;
  readonly expiresAtMs: number;
}

const roles = new Set<PrincipalRole>(["patient", "doctor", "paramedic", "admin", "service"]);
const maxCached = 10_000;
const resourcePrefix: Record<PrincipalRole, string> = {
  patient: "patients/",
  doctor: "doctors/",
  paramedic: "paramedics/",
  admin: "admins/",
  service: "services/",
};

/** One answer for every bad token: which check failed is for the log, not for the caller. */
export function invalidToken(): DomainError {
  return new DomainError("unauthenticated", "INVALID_TOKEN", "The access token is missing, invalid or expired.");
}

/**
 * Turns a bearer token into a Principal: the signature with an explicit algorithm
 * list (EdDSA only: `alg: none` and HS256-with-the-public-key are refused by jose
 * before any key is used), the key by `kid`, issuer, audience, `typ` (so a refresh or
 * other token is never an access token), expiry and not-before, then the session's
 * liveness. A verified signature is cached until the token expires (verifying
 * EdDSA costs far more than the rest of a GetPatient); the session check is not
 * cached here, so revocation still applies on the next call. A call that must work
 * while PostgreSQL is down (`tolerateOutage`, CreateEmergency) gets the last known
 * session state, or the token's own signature and expiry when none is known.
 */
export class TokenVerifier {
  readonly #keys: ReadonlyMap<string, KeyObject>;
  readonly #settings: TokenSettings;
  readonly #sessions: SessionStates;
  readonly #now: () => number;
  readonly #cache = new Map<string, Verified>();

  constructor(
    keys: ReadonlyMap<string, KeyObject>,
    settings: TokenSettings,
    sessions: SessionStates,
    now: () => number = Date.now,
  ) {
    this.#keys = keys;
    this.#settings = settings;
    this.#sessions = sessions;
    this.#now = now;
  }

  /** The caller of a token, or UNAUTHENTICATED. Synchronous when the token and its session are cached. */
  authenticate(token: string, tolerateOutage = false): Principal | Promise<Principal> {
    const cached = this.#cache.get(token);
    if (cached !== undefined && cached.expiresAtMs > this.#now()) return this.#checkLive(cached, tolerateOutage);
    return this.#verify(token).then((verified) => this.#checkLive(verified, tolerateOutage));
  }

  #checkLive(verified: Verified, tolerateOutage: boolean): Principal | Promise<Principal> {
    const { principal, accountId, issuedAt } = verified;
    if (principal.sessionId === undefined || accountId === undefined) return principal;
    const live = this.#sessions.isLive(principal.sessionId, accountId, issuedAt, tolerateOutage);
    if (live === true) return principal;
    if (live === false) throw invalidToken();
    return live.then((ok) => {
      if (!ok) throw invalidToken();
      return principal;
    });
  }

  async #verify(token: string): Promise<Verified> {
    let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
    try {
      ({ payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid === undefined ? undefined : this.#keys.get(header.kid);
          if (key === undefined) throw new errors.JWKSNoMatchingKey();
          return key;
        },
        {
          algorithms: [signingAlgorithm],
          issuer: this.#settings.issuer,
          audience: this.#settings.audience,
          typ: accessTokenType,
          requiredClaims: ["sub", "iat", "exp", "nbf", "role", "scope"],
          currentDate: new Date(this.#now()),
        },
      ));
    } catch {
      throw invalidToken();
    }
    const verified = toVerified(payload);
    if (verified === undefined) throw invalidToken();
    if (this.#cache.size >= maxCached) this.#cache.clear();
    this.#cache.set(token, verified);
    return verified;
  }
}

function toVerified(payload: Record<string, unknown>): Verified | undefined {
  const { sub, role, pid, sid, scope, iat, exp } = payload;
  if (typeof sub !== "string" || typeof role !== "string" || !roles.has(role as PrincipalRole)) return undefined;
  if (typeof iat !== "number" || typeof exp !== "number") return undefined;
  const principalRole = role as PrincipalRole;
  const slash = sub.indexOf("/");
  const kind = sub.slice(0, slash);
  const id = sub.slice(slash + 1);
  if (principalRole === "service") {
    if (kind !== "services" || !/^[a-z][a-z0-9-]{0,63}$/.test(id)) return undefined;
  } else if (kind !== "accounts" || !isUuid(id) || typeof sid !== "string" || !isUuid(sid)) {
    return undefined;
  }
  if (principalRole === "patient" && (typeof pid !== "string" || !isUuid(pid))) return undefined;
  const accountId = principalRole === "service" ? undefined : id;
  const principal: Principal = Object.freeze({
    role: principalRole,
    name: resourcePrefix[principalRole] + (principalRole === "patient" ? (pid as string) : id),
    accountId,
    patientId: principalRole === "patient" ? (pid as string) : undefined,
    sessionId: principalRole === "service" ? undefined : (sid as string),
    fullAccess: scope === "full",
  });
  return { principal, accountId, issuedAt: iat, expiresAtMs: exp * 1000 };
}
