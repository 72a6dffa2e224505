import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { MfaEnrollmentSchema } from "../../gen/telemed/patient/v1/auth_pb.js";
import type { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import { principalKey } from "../rpc/context-keys.ts";
import { DomainError } from "../shared/domain-errors.ts";
import type { Account } from "./account-store.ts";
import type { AuthDeps } from "./auth-deps.ts";
import { badMfaCode } from "./auth-errors.ts";
import { tokenPairToProto } from "./auth-mapping.ts";
import { attemptKeys, attemptSucceeded, countAttempt } from "./login-handlers.ts";
import { checkSecondFactor } from "./second-factor.ts";
import { invalidToken } from "./token-verifier.ts";

const enrollmentTtlMs = 10 * 60_000;

/** The caller's account; the token was checked by the pipeline, the account may have gone since. */
export async function callerAccount(deps: AuthDeps, context: HandlerContext): Promise<Account> {
  const accountId = context.values.get(principalKey)?.accountId;
  const account = accountId === undefined ? undefined : await deps.accounts.byId(accountId);
  if (account === undefined || account.disabledAt !== null) throw invalidToken();
  return account;
}

/** StartMfaEnrollment, ConfirmMfaEnrollment and RegenerateRecoveryCodes. */
export function mfaHandlers(
  deps: AuthDeps,
): Pick<ServiceImpl<typeof AuthService>, "startMfaEnrollment" | "confirmMfaEnrollment" | "regenerateRecoveryCodes"> {
  return {
    async startMfaEnrollment(_request, context) {
      const account = await callerAccount(deps, context);
      if (account.mfaEnrolledAt !== null) {
        throw new DomainError(
          "failed-precondition",
          "MFA_ALREADY_ENROLLED",
          "Multi-factor authentication is already on.",
        );
      }
      const now = deps.clock.now();
      const secret = deps.totp.newSecret();
      const expiresAt = new Date(now.getTime() + enrollmentTtlMs);
      await deps.accounts.setPendingMfa(account.id, deps.secretBox.seal(secret, account.id), expiresAt, now);
      return {
        enrollment: create(MfaEnrollmentSchema, {
          secret,
          otpauthUri: deps.totp.uri(account.email, secret),
          expireTime: timestampFromDate(expiresAt),
        }),
      };
    },

    async confirmMfaEnrollment(request, context) {
      const account = await callerAccount(deps, context);
      const now = deps.clock.now();
      const pending = account.mfaPendingSecret;
      if (pending === null || account.mfaPendingExpiresAt === null || account.mfaPendingExpiresAt <= now) {
        throw new DomainError(
          "failed-precondition",
          "NO_PENDING_ENROLLMENT",
          "There is no enrolment to confirm, or it expired. Start enrolment again.",
        );
      }
      const keys = attemptKeys(context, `mfa:${account.id}`);
      await countAttempt(deps, keys);
      const step = await deps.totp.check(deps.secretBox.open(pending, account.id), request.totpCode, now);
      const { codes, hashes } = deps.recoveryCodes.generate();
      if (step === undefined || !(await deps.accounts.confirmMfa(account.id, pending, step, hashes, now))) {
        throw badMfaCode();
      }
      await attemptSucceeded(deps, keys);
      // The enrolment-only session ends; a full one replaces it.
      const sessionId = context.values.get(principalKey)?.sessionId;
      if (sessionId !== undefined) await deps.sessions.revokeSession(sessionId, "mfa_enrolled");
      const enrolled = (await deps.accounts.byId(account.id)) as Account;
      const tokens = await deps.sessions.open(enrolled, true);
      await context.values.get(callAuditKey)?.record(AuditOutcome.SUCCESS, "", { resource: `accounts/${account.id}` });
      return { recoveryCodes: codes, tokens: tokenPairToProto(enrolled, tokens) };
    },

    async regenerateRecoveryCodes(request, context) {
      const account = await callerAccount(deps, context);
      const keys = attemptKeys(context, `mfa:${account.id}`);
      await countAttempt(deps, keys);
      if (!(await checkSecondFactor(deps, account, { case: "totpCode", value: request.totpCode }))) {
        throw badMfaCode();
      }
      await attemptSucceeded(deps, keys);
      const { codes, hashes } = deps.recoveryCodes.generate();
      await deps.accounts.replaceRecoveryCodes(account.id, hashes, deps.clock.now());
      await context.values.get(callAuditKey)?.record(AuditOutcome.SUCCESS, "", { resource: `accounts/${account.id}` });
      return { recoveryCodes: codes };
    },
  };
}
