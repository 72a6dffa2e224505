import { defineEntity, p } from "@mikro-orm/core";

/** Roles an account can hold; services authenticate with client credentials, not accounts. */
export const accountRoles = ["patient", "doctor", "paramedic", "admin"] as const;
export type AccountRole = (typeof accountRoles)[number];

/**
 * A login: email, password hash and MFA state. A patient's account points at their
 * profile (`patient_id`); staff accounts (doctor, paramedic, admin) have none.
 *
 * - The email is never stored in clear: `email_sealed` holds it encrypted with the
 *   account's own data key (`data_key_wrapped`, its KEK's id in `data_key_id`;
 *   account-email.ts), and `email_index`, its blind index (an HMAC under its own key),
 *   is unique and what sign-up, log-in and password reset look accounts up by.
 * - `password_hash` is an scrypt string carrying its own parameters (password-hasher.ts).
 * - `mfa_secret` is the TOTP secret encrypted with the service's secret key (secret-box.ts);
 *   `mfa_last_step` is the TOTP time step last accepted, so a code works once.
 * - `recovery_code_hashes` are SHA-256 hashes of the unused recovery codes.
 * - `tokens_valid_after`: access tokens issued before it are refused (password change,
 *   disabled account), whatever their expiry says.
 */
export const AccountEntity = defineEntity({
  name: "Account",
  tableName: "accounts",
  properties: {
    id: p.uuid().primary(),
    emailIndex: p.string().length(64).unique("accounts_email_index_unique"),
    emailSealed: p.text(),
    dataKeyWrapped: p.text(),
    dataKeyId: p.string().length(32).index("accounts_data_key_idx"),
    passwordHash: p.text(),
    role: p.enum(accountRoles),
    patientId: p.uuid().nullable().unique("accounts_patient_id_unique"),
    emailVerifiedAt: p.datetime(3).nullable(),
    mfaSecret: p.text().nullable(),
    mfaPendingSecret: p.text().nullable(),
    mfaPendingExpiresAt: p.datetime(3).nullable(),
    mfaEnrolledAt: p.datetime(3).nullable(),
    mfaLastStep: p.integer().nullable(),
    recoveryCodeHashes: p.json<string[]>(),
    tokensValidAfter: p.datetime(3),
    passwordChangedAt: p.datetime(3),
    disabledAt: p.datetime(3).nullable(),
    signUpRequestId: p.uuid().nullable().unique("accounts_sign_up_request_id_unique"),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
  },
});

/**
 * A login session: what a refresh token family belongs to. Revoking it (log-out,
 * refresh-token reuse) refuses its access tokens on the next call.
 */
export const SessionEntity = defineEntity({
  name: "AuthSession",
  tableName: "auth_sessions",
  properties: {
    id: p.uuid().primary(),
    accountId: p.uuid().index("auth_sessions_account_id_idx"),
    /** False until the patient has MFA: the session's tokens open only enrolment. */
    fullAccess: p.boolean(),
    createdAt: p.datetime(3),
    expiresAt: p.datetime(3),
    revokedAt: p.datetime(3).nullable(),
    revokeReason: p.string().length(32).nullable(),
  },
});

/**
 * Refresh tokens, stored as SHA-256 hashes (they are bearer secrets). Each refresh
 * marks the old one used; presenting a used one again means it was stolen, and the
 * whole session is revoked (reuse detection).
 */
export const RefreshTokenEntity = defineEntity({
  name: "RefreshToken",
  tableName: "auth_refresh_tokens",
  properties: {
    tokenHash: p.string().length(64).primary(),
    sessionId: p.uuid().index("auth_refresh_tokens_session_id_idx"),
    issuedAt: p.datetime(3),
    expiresAt: p.datetime(3),
    usedAt: p.datetime(3).nullable(),
  },
});

export const oneTimeTokenPurposes = ["verify_email", "reset_password", "mfa_challenge"] as const;
export type OneTimeTokenPurpose = (typeof oneTimeTokenPurposes)[number];

/** Email-verification, password-reset and MFA-challenge tokens, hashed, each usable once. */
export const OneTimeTokenEntity = defineEntity({
  name: "OneTimeToken",
  tableName: "auth_one_time_tokens",
  properties: {
    tokenHash: p.string().length(64).primary(),
    accountId: p.uuid().index("auth_one_time_tokens_account_id_idx"),
    purpose: p.enum(oneTimeTokenPurposes),
    createdAt: p.datetime(3),
    expiresAt: p.datetime(3),
    usedAt: p.datetime(3).nullable(),
  },
});

export const authEntities = [AccountEntity, SessionEntity, RefreshTokenEntity, OneTimeTokenEntity] as const;
