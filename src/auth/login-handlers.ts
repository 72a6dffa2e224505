import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { MfaChallengeSchema, MfaMethod } from "../../gen/telemed/patient/v1/auth_pb.js";
import type { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { clientAddressKey, principalKey } from "../rpc/context-keys.ts";
import { DomainError } from "../shared/domain-errors.ts";
import type { Account } from "./account-store.ts";
import { AuditOutcome, auditAuthentication } from "./auth-audit.ts";
import type { AuthDeps } from "./auth-deps.ts";
import { badCredentials, badMfaCode, tooManyAttempts } from "./auth-errors.ts";
import { tokenPairToProto } from "./auth-mapping.ts";
import { checkSecondFactor } from "./second-factor.ts";

const challengeTtlMs = 5 * 60_000;

/** The brute-force keys of a credential attempt: the account it names and where it comes from. */
export function attemptKeys(context: HandlerContext, accountKey: string): string[] {
  return [`account:${accountKey}`, `address:${context.values.get(clientAddressKey) || "unknown"}`];
}

/** Counts the attempt before the credential is checked; refuses it when a limit is reached. */
export async function countAttempt(deps: AuthDeps, keys: readonly string[]): Promise<void> {
  const verdict = await deps.limits.attempt(keys);
  if (!verdict.allowed) throw tooManyAttempts(verdict.retryAfterSeconds);
}

/** A success clears the account's count and takes this attempt off the client address's. */
export async function attemptSucceeded(deps: AuthDeps, keys: readonly string[]): Promise<void> {
  await deps.limits.reset(keys.slice(0, 1));
  await deps.limits.forgive(keys.slice(1));
}

/**
 * Re-hashes a correct password whose stored hash uses older (weaker) parameters, so
 * raising PASSWORD_HASH_COST reaches every account that logs in. Best effort: the
 * login goes on if it fails.
 */
async function upgradeHash(deps: AuthDeps, account: Account, password: string): Promise<void> {
  try {
    const upgraded = await deps.passwords.hash(password);
    await deps.accounts.upgradePasswordHash(account.id, account.passwordHash, upgraded, deps.clock.now());
  } catch {
    // The old hash still verifies; the next login tries again.
  }
}

/** LogIn, VerifyMfa, RefreshTokens and LogOut. */
export function loginHandlers(
  deps: AuthDeps,
): Pick<ServiceImpl<typeof AuthService>, "logIn" | "verifyMfa" | "refreshTokens" | "logOut"> {
  return {
    async logIn(request, context) {
      // By the email's blind index: the limiter's keys (in Redis) never carry the address.
      const keys = attemptKeys(context, deps.accounts.emailIndex(request.email));
      await countAttempt(deps, keys);
      const account = await deps.accounts.byEmail(request.email);
      const ok =
        account === undefined
          ? await deps.passwords.dummyVerify().then(() => false)
          : await deps.passwords.verify(request.password, account.passwordHash);
      if (!ok || account === undefined || account.disabledAt !== null) {
        await auditAuthentication(context, AuditOutcome.FAILURE, "INVALID_CREDENTIALS", account);
        throw badCredentials();
      }
      // The password was right: that is not a guess to count, whatever comes next.
      await attemptSucceeded(deps, keys);
      if (deps.passwords.needsRehash(account.passwordHash)) await upgradeHash(deps, account, request.password);
      if (account.emailVerifiedAt === null) {
        await auditAuthentication(context, AuditOutcome.FAILURE, "EMAIL_NOT_VERIFIED", account);
        throw new DomainError(
          "failed-precondition",
          "EMAIL_NOT_VERIFIED",
          "Verify your email address first: follow the link in the email we sent, or ask for a new one.",
        );
      }
      if (account.mfaEnrolledAt !== null) {
        // The password alone never yields a token once MFA is on (TST-PT001-4).
        const now = deps.clock.now();
        const challenge = await deps.accounts.issueOneTime(account.id, "mfa_challenge", challengeTtlMs, now);
        await auditAuthentication(context, AuditOutcome.SUCCESS, "MFA_REQUIRED", account);
        return {
          outcome: {
            case: "mfaChallenge",
            value: create(MfaChallengeSchema, {
              challengeToken: challenge,
              expireTime: timestampFromDate(new Date(now.getTime() + challengeTtlMs)),
              methods: [MfaMethod.TOTP, MfaMethod.RECOVERY_CODE],
            }),
          },
        };
      }
      // Without MFA the session opens only enrolment: no health data before a second factor.
      const tokens = await deps.sessions.open(account, false);
      await auditAuthentication(context, AuditOutcome.SUCCESS, "MFA_ENROLLMENT_REQUIRED", account);
      return { outcome: { case: "tokens", value: tokenPairToProto(account, tokens) } };
    },

    async verifyMfa(request, context) {
      const now = deps.clock.now();
      const accountId = await deps.accounts.peekOneTime(request.challengeToken, "mfa_challenge", now);
      const account = accountId === undefined ? undefined : await deps.accounts.byId(accountId);
      if (account === undefined || account.mfaSecret === null || account.disabledAt !== null) throw badMfaCode();
      const keys = attemptKeys(context, `mfa:${account.id}`);
      await countAttempt(deps, keys);
      const accepted = await checkSecondFactor(deps, account, request.code);
      if (
        !accepted ||
        (await deps.accounts.consumeOneTime(request.challengeToken, "mfa_challenge", now)) === undefined
      ) {
        await auditAuthentication(context, AuditOutcome.FAILURE, "INVALID_MFA_CODE", account);
        throw badMfaCode();
      }
      await attemptSucceeded(deps, keys);
      const tokens = await deps.sessions.open(account, true);
      await auditAuthentication(context, AuditOutcome.SUCCESS, "", account);
      const remaining = account.recoveryCodeHashes.length - (request.code.case === "recoveryCode" ? 1 : 0);
      return { tokens: tokenPairToProto(account, tokens), recoveryCodesRemaining: remaining };
    },

    async refreshTokens(request, context) {
      let found: Account | undefined;
      try {
        const tokens = await deps.sessions.refresh(request.refreshToken, async (id) => {
          found = await deps.accounts.byId(id);
          return found;
        });
        await auditAuthentication(context, AuditOutcome.SUCCESS, "", found);
        return { tokens: tokenPairToProto(found as Account, tokens) };
      } catch (error) {
        await auditAuthentication(context, AuditOutcome.FAILURE, "INVALID_REFRESH_TOKEN", found);
        throw error;
      }
    },

    async logOut(request, context) {
      const principal = context.values.get(principalKey);
      if (principal?.accountId === undefined || principal.sessionId === undefined) return {};
      if (request.allSessions) {
        await deps.sessions.revokeAll(principal.accountId, "log_out_everywhere");
      } else {
        await deps.sessions.revokeSession(principal.sessionId, "log_out");
        // A refresh token of another of the caller's sessions may be named too.
        const other = request.refreshToken
          ? await deps.sessions.sessionOfRefreshToken(request.refreshToken)
          : undefined;
        if (other !== undefined && other !== principal.sessionId) {
          const mine = await deps.sessions.isSessionOf(other, principal.accountId);
          if (mine) await deps.sessions.revokeSession(other, "log_out");
        }
      }
      return {};
    },
  };
}
