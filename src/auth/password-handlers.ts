import type { ServiceImpl } from "@connectrpc/connect";
import type { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { DomainError } from "../shared/domain-errors.ts";
import { type Account, tokenHash } from "./account-store.ts";
import { AuditOutcome, auditAuthentication } from "./auth-audit.ts";
import type { AuthDeps } from "./auth-deps.ts";
import { badCredentials, badMfaCode } from "./auth-errors.ts";
import { tokenPairToProto } from "./auth-mapping.ts";
import { attemptKeys, attemptSucceeded, countAttempt } from "./login-handlers.ts";
import { callerAccount } from "./mfa-handlers.ts";
import { limitMail } from "./sign-up-handlers.ts";
import { checkSecondFactor, type SecondFactor } from "./second-factor.ts";

const resetTtlMs = 30 * 60_000;
const recoveryCodeShape = /^[A-Za-z0-9]{4}(-?[A-Za-z0-9]{4}){1,3}$/;

async function requireStrong(deps: AuthDeps, account: Account, password: string, field: string): Promise<void> {
  const patient =
    account.patientId === null ? undefined : await deps.patients.get(account.patientId).catch(() => undefined);
  deps.passwords.requireStrong(
    password,
    { email: account.email, givenName: patient?.legalName.given ?? "", familyName: patient?.legalName.family ?? "" },
    field,
  );
}

/** ChangePassword, RequestPasswordReset and ResetPassword. */
export function passwordHandlers(
  deps: AuthDeps,
): Pick<ServiceImpl<typeof AuthService>, "changePassword" | "requestPasswordReset" | "resetPassword"> {
  return {
    async changePassword(request, context) {
      const account = await callerAccount(deps, context);
      const keys = attemptKeys(context, deps.accounts.emailIndex(account.email));
      await countAttempt(deps, keys);
      if (!(await deps.passwords.verify(request.currentPassword, account.passwordHash))) {
        await auditAuthentication(context, AuditOutcome.FAILURE, "INVALID_CREDENTIALS", account);
        throw badCredentials();
      }
      if (account.mfaEnrolledAt !== null) {
        const factor: SecondFactor = { case: "totpCode", value: request.totpCode };
        if (request.totpCode === "" || !(await checkSecondFactor(deps, account, factor))) {
          throw badMfaCode();
        }
      }
      await attemptSucceeded(deps, keys);
      await requireStrong(deps, account, request.newPassword, "new_password");
      await deps.accounts.setPassword(account.id, await deps.passwords.hash(request.newPassword), deps.clock.now());
      // Every older token stops working; the caller continues in a new session.
      await deps.sessions.revokeAll(account.id, "password_changed");
      const changed = (await deps.accounts.byId(account.id)) as Account;
      const tokens = await deps.sessions.open(changed, changed.mfaEnrolledAt !== null);
      await auditAuthentication(context, AuditOutcome.SUCCESS, "PASSWORD_CHANGED", changed);
      return { tokens: tokenPairToProto(changed, tokens) };
    },

    async requestPasswordReset(request, context) {
      await limitMail(deps, context, request.email);
      const account = await deps.accounts.byEmail(request.email);
      // The same answer whether or not the email has an account (no enumeration).
      if (account !== undefined && account.disabledAt === null) {
        const token = await deps.accounts.issueOneTime(account.id, "reset_password", resetTtlMs, deps.clock.now());
        await deps.mailer.send({
          to: account.email,
          subject: "Reset your password",
          text:
            "Someone asked to reset the password of your Telemed account. If it was you, use this code " +
            `(AuthService.ResetPassword) within 30 minutes:\n\n${token}\n\nIf it was not you, ignore this email.`,
          idempotencyKey: `password-reset/${account.id}/${tokenHash(token).slice(0, 16)}`,
        });
      }
      return {};
    },

    async resetPassword(request, context) {
      const now = deps.clock.now();
      const accountId = await deps.accounts.peekOneTime(request.resetToken, "reset_password", now);
      const account = accountId === undefined ? undefined : await deps.accounts.byId(accountId);
      const invalid = new DomainError(
        "invalid-argument",
        "INVALID_RESET_TOKEN",
        "The reset code is invalid, expired or already used. Ask for a new one.",
        { violations: [{ field: "reset_token", description: "is invalid, expired or already used" }] },
      );
      if (account === undefined || account.disabledAt !== null) throw invalid;
      await requireStrong(deps, account, request.newPassword, "new_password");
      if (account.mfaEnrolledAt !== null) {
        // A mailbox alone must not take over an account that has a second factor.
        const keys = attemptKeys(context, `mfa:${account.id}`);
        await countAttempt(deps, keys);
        const factor: SecondFactor =
          recoveryCodeShape.test(request.mfaCode) && !/^[0-9]{6}$/.test(request.mfaCode)
            ? { case: "recoveryCode", value: request.mfaCode }
            : { case: "totpCode", value: request.mfaCode };
        if (request.mfaCode === "" || !(await checkSecondFactor(deps, account, factor))) {
          throw badMfaCode();
        }
        await attemptSucceeded(deps, keys);
      }
      if ((await deps.accounts.consumeOneTime(request.resetToken, "reset_password", now)) === undefined) throw invalid;
      await deps.accounts.setPassword(account.id, await deps.passwords.hash(request.newPassword), now);
      await deps.sessions.revokeAll(account.id, "password_reset");
      await auditAuthentication(context, AuditOutcome.SUCCESS, "PASSWORD_RESET", account);
      return {};
    },
  };
}
