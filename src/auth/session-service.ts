import type { EntityManager } from "@mikro-orm/postgresql";
import { invalidArgument } from "../shared/domain-errors.ts";
import type { Clock } from "../shared/clock.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import type { Account } from "./account-store.ts";
import { newOpaqueToken, tokenHash } from "./account-store.ts";
import type { TokenIssuer } from "./token-issuer.ts";
import { invalidToken } from "./token-verifier.ts";

/** An access token and a refresh token, with their expiries. */
export interface IssuedTokens {
  readonly accessToken: string;
  readonly accessExpiresAt: Date;
  readonly refreshToken: string;
  readonly refreshExpiresAt: Date;
  readonly sessionId: string;
  readonly fullAccess: boolean;
}

/**
 * Tells every instance, this one first and synchronously, that sessions ended
 * (revocation-bus.ts); each instance's listener clears its session cache.
 */
export interface RevocationPublisher {
  publish(notice: { kind: "session"; sessionId: string } | { kind: "account"; accountId: string }): Promise<void>;
}

interface SessionRow {
  readonly session_id: string;
  readonly used_at: Date | null;
  readonly token_expires_at: Date;
  readonly account_id: string;
  readonly full_access: boolean;
  readonly revoked_at: Date | null;
  readonly session_expires_at: Date;
}

/**
 * Login sessions and their rotating refresh tokens. A refresh uses its token up and
 * hands out the next one; presenting a used token again means two parties hold it,
 * so the whole session is revoked (OAuth 2.0 Security BCP, refresh token rotation).
 * Revocations reach every instance's session cache through the revocation bus, this
 * instance's before `publish` returns, so they take effect on the next call.
 */
export class SessionService {
  readonly #em: () => EntityManager;
  readonly #issuer: TokenIssuer;
  readonly #bus: RevocationPublisher;
  readonly #clock: Clock;
  readonly #refreshTtlMs: number;

  constructor(deps: {
    em: () => EntityManager;
    issuer: TokenIssuer;
    bus: RevocationPublisher;
    clock: Clock;
    refreshTokenTtlSeconds: number;
  }) {
    this.#em = deps.em;
    this.#issuer = deps.issuer;
    this.#bus = deps.bus;
    this.#clock = deps.clock;
    this.#refreshTtlMs = deps.refreshTokenTtlSeconds * 1000;
  }

  /** Opens a session for an authenticated account and issues its first tokens. */
  async open(account: Account, fullAccess: boolean): Promise<IssuedTokens> {
    const now = this.#clock.now();
    const sessionId = uuidV7(now.getTime());
    const expiresAt = new Date(now.getTime() + this.#refreshTtlMs);
    await this.#em().execute(
      `insert into "auth_sessions" ("id", "account_id", "full_access", "created_at", "expires_at") values (?, ?, ?, ?, ?)`,
      [sessionId, account.id, fullAccess, now.toISOString(), expiresAt.toISOString()],
      "run",
    );
    return this.#tokens(account, sessionId, fullAccess, now, expiresAt);
  }

  /** Exchanges a refresh token for the next pair; UNAUTHENTICATED for anything but a live, unused token. */
  async refresh(
    refreshToken: string,
    loadAccount: (id: string) => Promise<Account | undefined>,
  ): Promise<IssuedTokens> {
    const now = this.#clock.now();
    const hash = tokenHash(refreshToken);
    const em = this.#em();
    const row: SessionRow | undefined = await em.execute<SessionRow>(
      `select t."session_id", t."used_at", t."expires_at" as "token_expires_at", s."account_id", s."full_access",
              s."revoked_at", s."expires_at" as "session_expires_at"
         from "auth_refresh_tokens" t join "auth_sessions" s on s."id" = t."session_id"
        where t."token_hash" = ?`,
      [hash],
      "get",
    );
    if (row === undefined) throw invalidToken();
    if (row.used_at !== null) {
      await this.revokeSession(row.session_id, "refresh_token_reuse");
      throw invalidToken();
    }
    if (row.revoked_at !== null || new Date(row.token_expires_at) <= now) throw invalidToken();
    const used = await em.execute<{ affectedRows: number }>(
      `update "auth_refresh_tokens" set "used_at" = ? where "token_hash" = ? and "used_at" is null`,
      [now.toISOString(), hash],
      "run",
    );
    if (used.affectedRows !== 1) {
      // Someone else used it between our read and write: that is reuse too.
      await this.revokeSession(row.session_id, "refresh_token_reuse");
      throw invalidToken();
    }
    const account = await loadAccount(row.account_id);
    if (account === undefined || account.disabledAt !== null) throw invalidToken();
    return this.#tokens(account, row.session_id, row.full_access, now, new Date(row.session_expires_at));
  }

  /** The session a refresh token belongs to, if it is the caller's. */
  async sessionOfRefreshToken(refreshToken: string): Promise<string | undefined> {
    const row: { session_id: string } | undefined = await this.#em().execute<{ session_id: string }>(
      `select "session_id" from "auth_refresh_tokens" where "token_hash" = ?`,
      [tokenHash(refreshToken)],
      "get",
    );
    return row?.session_id;
  }

  async isSessionOf(sessionId: string, accountId: string): Promise<boolean> {
    const row: { id: string } | undefined = await this.#em().execute<{ id: string }>(
      `select "id" from "auth_sessions" where "id" = ? and "account_id" = ?`,
      [sessionId, accountId],
      "get",
    );
    return row !== undefined;
  }

  async revokeSession(sessionId: string, reason: string): Promise<void> {
    await this.#em().execute(
      `update "auth_sessions" set "revoked_at" = coalesce("revoked_at", ?), "revoke_reason" = coalesce("revoke_reason", ?)
       where "id" = ?`,
      [this.#clock.now().toISOString(), reason, sessionId],
      "run",
    );
    await this.#bus.publish({ kind: "session", sessionId });
  }

  /** Revokes every session of the account (password change, reset, log-out everywhere). */
  async revokeAll(accountId: string, reason: string): Promise<void> {
    await this.#em().execute(
      `update "auth_sessions" set "revoked_at" = ?, "revoke_reason" = ? where "account_id" = ? and "revoked_at" is null`,
      [this.#clock.now().toISOString(), reason, accountId],
      "run",
    );
    await this.#bus.publish({ kind: "account", accountId });
  }

  async #tokens(
    account: Account,
    sessionId: string,
    fullAccess: boolean,
    now: Date,
    sessionExpiresAt: Date,
  ): Promise<IssuedTokens> {
    if (account.role === "patient" && account.patientId === null) throw invalidArgument("account", "has no patient");
    const refreshToken = newOpaqueToken("rt");
    const refreshExpiresAt = sessionExpiresAt;
    await this.#em().execute(
      `insert into "auth_refresh_tokens" ("token_hash", "session_id", "issued_at", "expires_at") values (?, ?, ?, ?)`,
      [tokenHash(refreshToken), sessionId, now.toISOString(), refreshExpiresAt.toISOString()],
      "run",
    );
    const access = await this.#issuer.issue(
      {
        subject: `accounts/${account.id}`,
        role: account.role,
        ...(account.patientId === null ? {} : { patientId: account.patientId }),
        sessionId,
        fullAccess,
      },
      now,
    );
    return {
      accessToken: access.token,
      accessExpiresAt: access.expiresAt,
      refreshToken,
      refreshExpiresAt,
      sessionId,
      fullAccess,
    };
  }
}
