import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import type { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { patientDraftFromProto } from "../patients/patient-mapping.ts";
import { completeProfile } from "../patients/patient-rules.ts";
import { DomainError, notFound } from "../shared/domain-errors.ts";
import { type Account, tokenHash } from "./account-store.ts";
import { AuditOutcome, auditAuthentication } from "./auth-audit.ts";
import type { AuthDeps } from "./auth-deps.ts";
import { accountToProto } from "./auth-mapping.ts";
import { attemptKeys, countAttempt } from "./login-handlers.ts";

const verificationTtlMs = 48 * 3600_000;

/** Sends the email-verification message; a failed send is logged by the mailer, the account stays. */
async function sendVerification(deps: AuthDeps, account: Account): Promise<void> {
  const token = await deps.accounts.issueOneTime(account.id, "verify_email", verificationTtlMs, deps.clock.now());
  await deps.mailer.send({
    to: account.email,
    subject: "Confirm your email address",
    text:
      "Welcome to Telemed. Confirm your email address with this code in the app " +
      `(AuthService.VerifyEmail), valid for 48 hours:\n\n${token}\n\nIf you did not sign up, ignore this email.`,
    idempotencyKey: `verify-email/${account.id}/${tokenHash(token).slice(0, 16)}`,
  });
}

/**
 * Counts an email sent on request, per address and per client, whether or not the
 * address has an account (the answer must not tell): nobody can make the service
 * flood a mailbox.
 */
export async function limitMail(deps: AuthDeps, context: HandlerContext, email: string): Promise<void> {
  const keys = attemptKeys(context, `mail:${deps.accounts.emailIndex(email)}`);
  await countAttempt(deps, keys);
}

/** SignUp, VerifyEmail and ResendVerificationEmail. */
export function signUpHandlers(
  deps: AuthDeps,
): Pick<ServiceImpl<typeof AuthService>, "signUp" | "verifyEmail" | "resendVerificationEmail"> {
  return {
    async signUp(request, context) {
      const draft = patientDraftFromProto(request.patient ?? create(PatientSchema));
      const fields = completeProfile(draft, deps.clock.now());
      deps.passwords.requireStrong(
        request.password,
        { email: fields.contact.email, givenName: fields.legalName.given, familyName: fields.legalName.family },
        "password",
      );
      const existing = await deps.accounts.byEmail(fields.contact.email);
      if (existing !== undefined) {
        throw new DomainError(
          "already-exists",
          "ACCOUNT_EXISTS",
          "An account with this email already exists. Log in or reset the password.",
        );
      }
      const passwordHash = await deps.passwords.hash(request.password);
      // The profile first, with the same request id: a retry after a crash between the
      // two writes finds its profile (replayed) and finishes the account.
      const patient = await deps.patients.create(fields, request.requestId);
      const created = await deps.accounts.create(
        deps.accounts.entityManager(),
        {
          email: patient.contact.email,
          passwordHash,
          role: "patient",
          patientId: patient.id,
          requestId: request.requestId,
          emailVerified: false,
        },
        deps.clock.now(),
      );
      const account = created === "replayed" ? await deps.accounts.byPatientId(patient.id) : created;
      if (account === undefined) throw notFound("Account");
      if (created !== "replayed") {
        await auditAuthentication(context, AuditOutcome.SUCCESS, "", account);
        await sendVerification(deps, account);
      }
      return { account: accountToProto(account), patient: `patients/${patient.id}` };
    },

    async verifyEmail(request, context) {
      const accountId = await deps.accounts.consumeOneTime(request.token, "verify_email", deps.clock.now());
      if (accountId === undefined) {
        throw new DomainError(
          "invalid-argument",
          "INVALID_VERIFICATION_TOKEN",
          "The verification code is invalid, expired or already used. Ask for a new one.",
          { violations: [{ field: "token", description: "is invalid, expired or already used" }] },
        );
      }
      await deps.accounts.markEmailVerified(accountId, deps.clock.now());
      const account = (await deps.accounts.byId(accountId)) as Account;
      await auditAuthentication(context, AuditOutcome.SUCCESS, "", account);
      return { account: accountToProto(account) };
    },

    async resendVerificationEmail(request, context) {
      await limitMail(deps, context, request.email);
      const account = await deps.accounts.byEmail(request.email);
      // The same answer whether or not the email has an account (no enumeration).
      if (account !== undefined && account.emailVerifiedAt === null && account.disabledAt === null) {
        await sendVerification(deps, account);
      }
      return {};
    },
  };
}
