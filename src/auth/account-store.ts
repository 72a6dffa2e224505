import type { EntityManager } from "@mikro-orm/postgresql";
import { UniqueConstraintViolationException } from "@mikro-orm/postgresql";
import { createHash, randomBytes } from "node:crypto";
import { alreadyExists } from "../shared/domain-errors.ts";
import { uuidV7 } from "../shared/uuid-v7.ts";
import type { AccountRole, OneTimeTokenPurpose } from "./account-entities.ts";
import type { AccountEmails } from "./account-email.ts";

/** An account row as the auth handlers use it. */
export interface Account {
  readonly id: string;
  readonly email: string;
  readonly passwordHash: string;
  readonly role: AccountRole;
  readonly patientId: string | null;
  readonly emailVerifiedAt: Date | null;
  readonly mfaSecret: string | null;
  readonly mfaPendingSecret: string | null;
  readonly mfaPendingExpiresAt: Date | null;
  readonly mfaEnrolledAt: Date | null;
  readonly mfaLastStep: number | null;
  readonly recoveryCodeHashes: readonly string[];
  readonly passwordChangedAt: Date;
  readonly disabledAt: Date | null;
  readonly createdAt: Date;
}

const accountColumns =
  '"id", "email_sealed", "data_key_wrapped", "password_hash", "role", "patient_id", "email_verified_at", "mfa_secret", "mfa_pending_secret", ' +
  '"mfa_pending_expires_at", "mfa_enrolled_at", "mfa_last_step", "recovery_code_hashes", "password_changed_at", ' +
  '"disabled_at", "created_at"';

type AccountRow = Record<string, unknown>;

/** SHA-256 hex of a bearer secret: tokens are stored only as hashes. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** A new opaque bearer secret with a readable prefix (`rt_`, `ev_` …) and 256 bits of randomness. */
export function newOpaqueToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

/**
 * The SQL of accounts and one-time tokens. Every change that must happen once
 * (a TOTP step, a recovery code, a one-time token) is a single conditional UPDATE,
 * so two concurrent uses of the same secret cannot both succeed. Emails are sealed
 * on the way in and opened on the way out (`AccountEmails`); look-ups by email go
 * through its blind index.
 */
export class AccountStore {
  readonly #em: () => EntityManager;
  readonly #emails: AccountEmails;

  constructor(em: () => EntityManager, emails: AccountEmails) {
    this.#em = em;
    this.#emails = emails;
  }

  /** The blind index of an email address (attempt limits count by it, never by the address). */
  emailIndex(email: string): string {
    return this.#emails.index(email);
  }

  async create(
    em: EntityManager,
    fields: {
      email: string;
      passwordHash: string;
      role: AccountRole;
      patientId: string | null;
      requestId: string | null;
      emailVerified: boolean;
    },
    now: Date,
  ): Promise<Account | "replayed"> {
    const stamp = now.toISOString();
    const id = uuidV7(now.getTime());
    const email = this.#emails.seal(id, fields.email);
    try {
      const row: AccountRow | undefined = await em.execute<AccountRow>(
        `insert into "accounts" ("id", "email_index", "email_sealed", "data_key_wrapped", "data_key_id", "password_hash",
           "role", "patient_id", "email_verified_at", "recovery_code_hashes", "tokens_valid_after", "password_changed_at",
           "sign_up_request_id", "created_at", "updated_at")
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', ?, ?, ?, ?, ?)
         on conflict ("sign_up_request_id") do nothing returning ${accountColumns}`,
        [
          id,
          email.emailIndex,
          email.emailSealed,
          email.dataKeyWrapped,
          email.dataKeyId,
          fields.passwordHash,
          fields.role,
          fields.patientId,
          fields.emailVerified ? stamp : null,
          stamp,
          stamp,
          fields.requestId,
          stamp,
          stamp,
        ],
        "get",
      );
      return row === undefined ? "replayed" : this.#toAccount(row);
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) {
        throw alreadyExists(
          "ACCOUNT_EXISTS",
          "An account with this email already exists. Log in or reset the password.",
        );
      }
      throw error;
    }
  }

  /** A fresh EntityManager, for a caller that runs `create` outside its own transaction. */
  entityManager(): EntityManager {
    return this.#em();
  }

  /** The account of an email address, found by its blind index. */
  async byEmail(email: string): Promise<Account | undefined> {
    return this.#one(`select ${accountColumns} from "accounts" where "email_index" = ?`, [this.#emails.index(email)]);
  }

  async byId(id: string, em: EntityManager = this.#em()): Promise<Account | undefined> {
    return this.#one(`select ${accountColumns} from "accounts" where "id" = ?`, [id], em);
  }

  async byPatientId(patientId: string): Promise<Account | undefined> {
    return this.#one(`select ${accountColumns} from "accounts" where "patient_id" = ?`, [patientId]);
  }

  async markEmailVerified(id: string, now: Date): Promise<void> {
    await this.#run(
      `update "accounts" set "email_verified_at" = coalesce("email_verified_at", ?), "updated_at" = ? where "id" = ?`,
      [now.toISOString(), now.toISOString(), id],
    );
  }

  async setPendingMfa(id: string, sealedSecret: string, expiresAt: Date, now: Date): Promise<void> {
    await this.#run(
      `update "accounts" set "mfa_pending_secret" = ?, "mfa_pending_expires_at" = ?, "updated_at" = ? where "id" = ?`,
      [sealedSecret, expiresAt.toISOString(), now.toISOString(), id],
    );
  }

  /** Moves the pending secret in place, once: false when another confirmation won. */
  async confirmMfa(id: string, sealedSecret: string, step: number, codeHashes: string[], now: Date): Promise<boolean> {
    return this.#changed(
      `update "accounts" set "mfa_secret" = "mfa_pending_secret", "mfa_pending_secret" = null,
         "mfa_pending_expires_at" = null, "mfa_enrolled_at" = ?, "mfa_last_step" = ?, "recovery_code_hashes" = ?,
         "updated_at" = ?
       where "id" = ? and "mfa_pending_secret" = ?`,
      [now.toISOString(), step, JSON.stringify(codeHashes), now.toISOString(), id, sealedSecret],
    );
  }

  /** Records a TOTP step as used; false when it (or a later one) was used already: a code works once. */
  async useTotpStep(id: string, step: number): Promise<boolean> {
    return this.#changed(
      `update "accounts" set "mfa_last_step" = ? where "id" = ? and ("mfa_last_step" is null or "mfa_last_step" < ?)`,
      [step, id, step],
    );
  }

  /** Removes a recovery code; false when it was not (or no longer) there. */
  async useRecoveryCode(id: string, codeHash: string): Promise<boolean> {
    return this.#changed(
      `update "accounts" set "recovery_code_hashes" = "recovery_code_hashes" - ?::text
       where "id" = ? and jsonb_exists("recovery_code_hashes", ?)`,
      [codeHash, id, codeHash],
    );
  }

  async replaceRecoveryCodes(id: string, codeHashes: string[], now: Date): Promise<void> {
    await this.#run(`update "accounts" set "recovery_code_hashes" = ?, "updated_at" = ? where "id" = ?`, [
      JSON.stringify(codeHashes),
      now.toISOString(),
      id,
    ]);
  }

  /** A new password refuses every token issued before now. */
  async setPassword(id: string, passwordHash: string, now: Date): Promise<void> {
    const stamp = now.toISOString();
    await this.#run(
      `update "accounts" set "password_hash" = ?, "password_changed_at" = ?, "tokens_valid_after" = ?, "updated_at" = ?
       where "id" = ?`,
      [passwordHash, stamp, stamp, stamp, id],
    );
  }

  /**
   * Replaces a hash made with old parameters by one of the same password made with
   * today's, unless the password changed meanwhile. Not a password change: tokens stay valid.
   */
  async upgradePasswordHash(id: string, oldHash: string, newHash: string, now: Date): Promise<void> {
    await this.#run(
      `update "accounts" set "password_hash" = ?, "updated_at" = ? where "id" = ? and "password_hash" = ?`,
      [newHash, now.toISOString(), id, oldHash],
    );
  }

  /** Disables the account of a deleted patient, in the caller's transaction; its id, if it has one. */
  async disablePatientAccount(em: EntityManager, patientId: string, now: Date): Promise<string | undefined> {
    const stamp = now.toISOString();
    const row: { id: string } | undefined = await em.execute<{ id: string }>(
      `update "accounts" set "disabled_at" = coalesce("disabled_at", ?), "tokens_valid_after" = ?, "updated_at" = ?
       where "patient_id" = ? returning "id"`,
      [stamp, stamp, stamp, patientId],
      "get",
    );
    return row?.id;
  }

  /** Issues a one-time token for `purpose`, valid for `ttlMs`. */
  async issueOneTime(accountId: string, purpose: OneTimeTokenPurpose, ttlMs: number, now: Date): Promise<string> {
    const token = newOpaqueToken(purposePrefix[purpose]);
    await this.#run(
      `insert into "auth_one_time_tokens" ("token_hash", "account_id", "purpose", "created_at", "expires_at")
       values (?, ?, ?, ?, ?)`,
      [tokenHash(token), accountId, purpose, now.toISOString(), new Date(now.getTime() + ttlMs).toISOString()],
    );
    return token;
  }

  /** The account of a live one-time token, without using it up (an MFA challenge survives a wrong code). */
  async peekOneTime(token: string, purpose: OneTimeTokenPurpose, now: Date): Promise<string | undefined> {
    const row: { account_id: string } | undefined = await this.#em().execute<{ account_id: string }>(
      `select "account_id" from "auth_one_time_tokens"
       where "token_hash" = ? and "purpose" = ? and "used_at" is null and "expires_at" > ?`,
      [tokenHash(token), purpose, now.toISOString()],
      "get",
    );
    return row?.account_id;
  }

  /** Uses up a one-time token; the account it was for, or undefined when unknown, used or expired. */
  async consumeOneTime(token: string, purpose: OneTimeTokenPurpose, now: Date): Promise<string | undefined> {
    const row: { account_id: string } | undefined = await this.#em().execute<{ account_id: string }>(
      `update "auth_one_time_tokens" set "used_at" = ?
       where "token_hash" = ? and "purpose" = ? and "used_at" is null and "expires_at" > ?
       returning "account_id"`,
      [now.toISOString(), tokenHash(token), purpose, now.toISOString()],
      "get",
    );
    return row?.account_id;
  }

  async #one(sql: string, params: unknown[], em: EntityManager = this.#em()): Promise<Account | undefined> {
    const row: AccountRow | undefined = await em.execute<AccountRow>(sql, params, "get");
    return row === undefined ? undefined : this.#toAccount(row);
  }

  #toAccount(row: AccountRow): Account {
    const email = this.#emails.open(row as { id: string; email_sealed: string; data_key_wrapped: string });
    return toAccount(row, email);
  }

  async #run(sql: string, params: unknown[]): Promise<void> {
    await this.#em().execute(sql, params, "run");
  }

  async #changed(sql: string, params: unknown[]): Promise<boolean> {
    const result = await this.#em().execute<{ affectedRows: number }>(sql, params, "run");
    return result.affectedRows === 1;
  }
}

const purposePrefix: Record<OneTimeTokenPurpose, string> = {
  verify_email: "ev",
  reset_password: "pr",
  mfa_challenge: "mc",
};

function toAccount(row: AccountRow, email: string): Account {
  const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));
  return {
    id: row.id as string,
    email,
    passwordHash: row.password_hash as string,
    role: row.role as AccountRole,
    patientId: (row.patient_id as string | null) ?? null,
    emailVerifiedAt: date(row.email_verified_at),
    mfaSecret: (row.mfa_secret as string | null) ?? null,
    mfaPendingSecret: (row.mfa_pending_secret as string | null) ?? null,
    mfaPendingExpiresAt: date(row.mfa_pending_expires_at),
    mfaEnrolledAt: date(row.mfa_enrolled_at),
    mfaLastStep: (row.mfa_last_step as number | null) ?? null,
    recoveryCodeHashes: (row.recovery_code_hashes as string[]) ?? [],
    passwordChangedAt: new Date(row.password_changed_at as string),
    disabledAt: date(row.disabled_at),
    createdAt: new Date(row.created_at as string),
  };
}
