import type { Message } from "@bufbuild/protobuf";
import type { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import type { ActingFor } from "../rpc/context-keys.ts";
import { DomainError, notFound } from "../shared/domain-errors.ts";
import type { ResolvedPolicy } from "./access-policy.ts";
import type { Principal } from "./principal.ts";
import { invalidToken } from "./token-verifier.ts";

/** Turns a bearer token into a principal (TokenVerifier); throws UNAUTHENTICATED. */
export interface Authenticator {
  /** `tolerateOutage`: when the session store (PostgreSQL) is unreachable, trust the signed token. */
  authenticate(token: string, tolerateOutage?: boolean): Principal | Promise<Principal>;
}

/** The grants a guardian holds for a dependent right now (FamilyAccess); empty when none. */
export interface GuardianGrants {
  grantsFor(guardianPatientId: string, dependentPatientId: string): Promise<ReadonlySet<FamilyGrant>>;
}

const bearer = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

/**
 * The access decision of every call, in two steps around request validation:
 * `authenticate` (who is calling, and may that kind of caller call this method at
 * all) runs first, so an anonymous caller learns nothing from validation errors;
 * `scope` (may this caller act on the patient the request names) runs after, on a
 * request known to be well-formed. Both are synchronous on the hot path (cached
 * token, own data) and return a promise only when they must read something.
 */
export class AccessControl {
  readonly #authenticator: Authenticator;
  readonly #guardians: GuardianGrants;
  /** The last Authorization value that parsed, and its token: clients send the same one call after call. */
  #lastAuthorization = "";
  #lastToken = "";

  constructor(authenticator: Authenticator, guardians: GuardianGrants) {
    this.#authenticator = authenticator;
    this.#guardians = guardians;
  }

  /**
   * The caller, from the bearer token; undefined for an anonymous call to an anonymous
   * method. A bad token is refused even where none is needed, rather than ignored.
   */
  authenticate(policy: ResolvedPolicy, authorization: string | null): Principal | undefined | Promise<Principal> {
    if (authorization === null || authorization === "") {
      if (policy.anonymous) return undefined;
      throw invalidToken();
    }
    // The syntax check is a RegExp over a whole JWT; the token it yields is also the
    // verifier's cache key, and the same string object hashes once for every lookup.
    let token = this.#lastToken;
    if (authorization !== this.#lastAuthorization) {
      const parsed = bearer.exec(authorization)?.[1];
      if (parsed === undefined) throw invalidToken();
      token = parsed;
      this.#lastAuthorization = authorization;
      this.#lastToken = parsed;
    }
    return this.#authenticator.authenticate(token, policy.outageTolerant === true);
  }

  /** Whether this kind of caller may call the method at all (role, MFA); separate so a refusal still knows who asked. */
  permit(policy: ResolvedPolicy, principal: Principal | undefined): void {
    if (policy.anonymous) return;
    if (principal === undefined) throw invalidToken();
    if (!policy.roles.has(principal.role)) {
      throw new DomainError("permission-denied", "ROLE_NOT_ALLOWED", "Your role may not call this method.");
    }
    if (!principal.fullAccess && !policy.beforeMfa) {
      throw new DomainError(
        "permission-denied",
        "MFA_ENROLLMENT_REQUIRED",
        "Enrol in multi-factor authentication (AuthService.StartMfaEnrollment) before using this method.",
      );
    }
  }

  /** The patient the call acts on, and whether as a proxy; NOT_FOUND when the caller may not. */
  scope(
    policy: ResolvedPolicy,
    principal: Principal | undefined,
    request: Message,
  ): ActingFor | undefined | Promise<ActingFor | undefined> {
    const patientId = policy.readPatientId(request);
    if (patientId === undefined) {
      if (policy.patientField.length > 0 && principal?.role === "patient") throw notFound("Patient");
      return undefined;
    }
    if (principal === undefined) throw invalidToken();
    if (principal.role !== "patient") return { patientId, proxy: false };
    if (principal.patientId === patientId) return { patientId, proxy: false };
    const grant = policy.proxyGrant;
    if (grant === undefined) throw notFound("Patient");
    return this.#guardians.grantsFor(principal.patientId as string, patientId).then((grants) => {
      if (!grants.has(grant)) throw notFound("Patient");
      return { patientId, proxy: true };
    });
  }
}
