import type { Account } from "./account-store.ts";
import type { AuthDeps } from "./auth-deps.ts";

/** A TOTP code or a recovery code, as the requests carry them. */
export type SecondFactor =
  | { case: "totpCode"; value: string }
  | { case: "recoveryCode"; value: string }
  | { case: undefined; value?: undefined };

/**
 * Checks a second factor and uses it up: a TOTP code's time step is recorded so the
 * same code (or an older one) is refused next time, a recovery code is removed.
 * Both happen in one conditional UPDATE, so two concurrent uses cannot both pass.
 */
export async function checkSecondFactor(deps: AuthDeps, account: Account, factor: SecondFactor): Promise<boolean> {
  if (account.mfaSecret === null) return false;
  if (factor.case === "totpCode") {
    const step = await deps.totp.check(
      deps.secretBox.open(account.mfaSecret, account.id),
      factor.value,
      deps.clock.now(),
    );
    return step !== undefined && (await deps.accounts.useTotpStep(account.id, step));
  }
  if (factor.case === "recoveryCode") {
    return deps.accounts.useRecoveryCode(account.id, deps.recoveryCodes.hash(factor.value));
  }
  return false;
}
