import type { EntityManager } from "@mikro-orm/postgresql";
import DataLoader from "dataloader";
import { isDatabaseUnavailable } from "../db/database-errors.ts";

/** What decides whether a session's access tokens are still good. */
interface SessionState {
  readonly accountId: string;
  readonly revoked: boolean;
  readonly expiresAtMs: number;
}
interface AccountState {
  /** Tokens issued (iat, seconds) before this second are refused. */
  readonly validAfterSeconds: number;
  readonly disabled: boolean;
}
interface StateRow {
  readonly id: string;
  readonly account_id: string;
  readonly revoked_at: Date | null;
  readonly expires_at: Date;
  readonly tokens_valid_after: Date;
  readonly disabled_at: Date | null;
}

/** How long a cached state is trusted without a revocation notice; a backstop, not the mechanism. */
const cacheTtlMs = 60_000;
const maxCached = 50_000;

/**
 * Whether an access token's session is still live, asked on every authenticated call.
 * The answer comes from PostgreSQL (the truth) through a small cache, so the hot path
 * costs two Map lookups. Log-out, refresh-token reuse, password change and disabling
 * an account clear the cache entry through `forgetSession`/`forgetAccount`, which the
 * revocation bus calls on every instance, so a revoked token is refused on the next
 * call, not after its expiry.
 */
export class SessionStates {
  readonly #em: () => EntityManager;
  readonly #now: () => number;
  readonly #sessions = new Map<string, { state: SessionState; loadedAt: number }>();
  readonly #accounts = new Map<string, AccountState>();
  readonly #loader: DataLoader<string, StateRow | undefined>;

  constructor(em: () => EntityManager, now: () => number = Date.now) {
    this.#em = em;
    this.#now = now;
    this.#loader = new DataLoader((ids) => this.#load(ids), {
      cache: false,
      maxBatchSize: 64,
      batchScheduleFn: (run) => setImmediate(run),
    });
  }

  /**
   * True when a token of `sessionId`, issued at `issuedAtSeconds` for `accountId`, may
   * still be used. Synchronous when the state is cached.
   */
  isLive(
    sessionId: string,
    accountId: string,
    issuedAtSeconds: number,
    tolerateOutage = false,
  ): boolean | Promise<boolean> {
    const cached = this.#sessions.get(sessionId);
    if (cached !== undefined && this.#now() - cached.loadedAt < cacheTtlMs) {
      const account = this.#accounts.get(cached.state.accountId);
      if (account !== undefined) return this.#decide(cached.state, account, accountId, issuedAtSeconds);
    }
    const loaded = this.#loader.load(sessionId).then((row) => {
      if (row === undefined) return false;
      const state = this.#remember(row);
      return this.#decide(state, this.#accounts.get(row.account_id) as AccountState, accountId, issuedAtSeconds);
    });
    if (!tolerateOutage) return loaded;
    // PostgreSQL down: the last state seen, however old; a session never seen is trusted on its signed token.
    return loaded.catch((error: unknown) => {
      if (!isDatabaseUnavailable(error)) throw error;
      const known = this.#sessions.get(sessionId);
      const account = known === undefined ? undefined : this.#accounts.get(known.state.accountId);
      return known === undefined || account === undefined
        ? true
        : this.#decide(known.state, account, accountId, issuedAtSeconds);
    });
  }

  forgetSession(sessionId: string): void {
    this.#sessions.delete(sessionId);
  }

  forgetAccount(accountId: string): void {
    this.#accounts.delete(accountId);
  }

  #decide(state: SessionState, account: AccountState, accountId: string, issuedAtSeconds: number): boolean {
    return (
      state.accountId === accountId &&
      !state.revoked &&
      state.expiresAtMs > this.#now() &&
      !account.disabled &&
      issuedAtSeconds >= account.validAfterSeconds
    );
  }

  #remember(row: StateRow): SessionState {
    if (this.#sessions.size >= maxCached) this.#sessions.clear();
    if (this.#accounts.size >= maxCached) this.#accounts.clear();
    const state: SessionState = {
      accountId: row.account_id,
      revoked: row.revoked_at !== null,
      expiresAtMs: new Date(row.expires_at).getTime(),
    };
    this.#sessions.set(row.id, { state, loadedAt: this.#now() });
    this.#accounts.set(row.account_id, {
      validAfterSeconds: Math.floor(new Date(row.tokens_valid_after).getTime() / 1000),
      disabled: row.disabled_at !== null,
    });
    return state;
  }

  async #load(ids: readonly string[]): Promise<(StateRow | undefined)[]> {
    const rows = await this.#em().execute<StateRow[]>(
      `select s."id", s."account_id", s."revoked_at", s."expires_at", a."tokens_valid_after", a."disabled_at"
         from "auth_sessions" s join "accounts" a on a."id" = s."account_id" where s."id" in (?)`,
      [ids],
      "all",
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  }
}
