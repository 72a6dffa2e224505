import { DomainError } from "../shared/domain-errors.ts";

/** The one answer for a wrong email, a wrong password or a disabled account: nothing to enumerate. */
export function badCredentials(): DomainError {
  return new DomainError("unauthenticated", "INVALID_CREDENTIALS", "The email or password is incorrect.");
}

export function badMfaCode(): DomainError {
  return new DomainError("unauthenticated", "INVALID_MFA_CODE", "The code is incorrect, expired or already used.");
}

export function tooManyAttempts(retryAfterSeconds: number): DomainError {
  return new DomainError(
    "resource-exhausted",
    "TOO_MANY_ATTEMPTS",
    `Too many failed attempts. Try again in ${Math.ceil(retryAfterSeconds / 60)} minute(s).`,
    { retryAfterSeconds },
  );
}

/** A new password that breaks the policy, as field violations on `field`. */
export function weakPassword(field: string, problems: readonly string[]): DomainError {
  return new DomainError("invalid-argument", "WEAK_PASSWORD", "The password does not meet the password policy.", {
    violations: problems.map((description) => ({ field, description })),
  });
}
