import { generateSecret, generateSync, generateURI, verifySync } from "otplib";

/**
 * What every authenticator app understands (Google Authenticator ignores anything
 * else): HMAC-SHA-1, six digits, 30-second steps. A code is accepted one step either
 * side of now, for clocks that drift and people who type slowly.
 */
export const totpSettings = { algorithm: "sha1", digits: 6, period: 30, window: 1 } as const;

/** The issuer shown in authenticator apps. */
export const totpIssuer = "Telemed Patient";

/** 20 random bytes (160 bits, RFC 4226's recommended length), base32 as apps expect. */
const secretBytes = 20;

/** The outcome of a check: the time step a valid code belongs to, for replay refusal. */
export type TotpCheck = { readonly valid: true; readonly step: number } | { readonly valid: false };

/** A new random TOTP secret, base32. */
export function newTotpSecret(): string {
  return generateSecret({ length: secretBytes });
}

/** The `otpauth://totp/...` URI an authenticator app scans (as a QR code) to enrol. */
export function otpauthUri(options: { issuer?: string; label: string; secret: string }): string {
  const { algorithm, digits, period } = totpSettings;
  return generateURI({
    issuer: options.issuer ?? totpIssuer,
    label: options.label,
    secret: options.secret,
    algorithm,
    digits,
    period,
  });
}

/** The time step (RFC 6238's T) that `date` falls in. */
export function totpStepAt(date: Date): number {
  return Math.floor(date.getTime() / 1000 / totpSettings.period);
}

/**
 * Checks `code` for `secret` at `now`, within one step either side. A code of a step at
 * or below `lastUsedStep` is refused, so a code works once: the caller stores the
 * returned `step` as the new last used step, atomically with accepting it (two
 * concurrent requests with the same code must not both pass). Spaces in the code, as
 * some apps display it ("123 456"), are ignored.
 */
export function checkTotp(
  secret: string,
  code: string,
  options: { now: Date; lastUsedStep?: number | null | undefined },
): TotpCheck {
  const token = code.replace(/\s+/g, "");
  if (!/^[0-9]{6}$/.test(token)) return { valid: false };
  const { lastUsedStep } = options;
  const epoch = Math.floor(options.now.getTime() / 1000);
  const newestStep = totpStepAt(options.now) + totpSettings.window;
  // otplib throws when afterTimeStep is beyond the window (a clock set back): nothing can pass then.
  if (lastUsedStep !== undefined && lastUsedStep !== null && lastUsedStep >= newestStep) return { valid: false };
  const result = verifySync({
    secret,
    token,
    epoch,
    epochTolerance: totpSettings.window * totpSettings.period,
    algorithm: totpSettings.algorithm,
    digits: totpSettings.digits,
    period: totpSettings.period,
    ...(lastUsedStep === undefined || lastUsedStep === null || lastUsedStep < 0 ? {} : { afterTimeStep: lastUsedStep }),
  });
  // The functional API types TOTP and HOTP results as one union; a TOTP match carries its step.
  return result.valid && "timeStep" in result ? { valid: true, step: result.timeStep } : { valid: false };
}

/** The code an authenticator shows for `secret` at `date` (for tests and tools). */
export function totpCodeAt(secret: string, date: Date): string {
  return generateSync({
    secret,
    epoch: Math.floor(date.getTime() / 1000),
    algorithm: totpSettings.algorithm,
    digits: totpSettings.digits,
    period: totpSettings.period,
  });
}
