import { describe, expect, it } from "vitest";
import { checkTotp, newTotpSecret, otpauthUri, totpCodeAt, totpStepAt } from "../../src/auth/totp.ts";

/** RFC 6238 appendix B's SHA-1 key, "12345678901234567890", in base32. */
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const at = (seconds: number) => new Date(seconds * 1000);

describe("TOTP", () => {
  it("makes random 160-bit base32 secrets", () => {
    const a = newTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(a);
  });

  it("computes the codes of RFC 6238's test vectors (SHA-1, last six digits)", () => {
    expect(totpCodeAt(rfcSecret, at(59))).toBe("287082");
    expect(totpCodeAt(rfcSecret, at(1111111109))).toBe("081804");
    expect(totpCodeAt(rfcSecret, at(1234567890))).toBe("005924");
    expect(totpCodeAt(rfcSecret, at(2000000000))).toBe("279037");
  });

  it("builds an otpauth URI authenticator apps scan, with the issuer and the email as label", () => {
    const secret = newTotpSecret();
    const uri = new URL(otpauthUri({ issuer: "Telemed Patient", label: "asha@example.com", secret }));
    expect(uri.protocol).toBe("otpauth:");
    expect(uri.host).toBe("totp");
    expect(decodeURIComponent(uri.pathname)).toBe("/Telemed Patient:asha@example.com");
    expect(uri.searchParams.get("secret")).toBe(secret);
    expect(uri.searchParams.get("issuer")).toBe("Telemed Patient");
    // Absent means the defaults every app assumes: SHA1, 6 digits, 30 s.
    expect(uri.searchParams.get("algorithm") ?? "SHA1").toBe("SHA1");
    expect(uri.searchParams.get("digits") ?? "6").toBe("6");
    expect(uri.searchParams.get("period") ?? "30").toBe("30");
    expect(otpauthUri({ label: "asha@example.com", secret })).toBe(uri.href);
  });

  it("accepts the current code and those of one step either side, and says which step", () => {
    const secret = newTotpSecret();
    const now = at(1_800_000_015);
    const step = totpStepAt(now);
    expect(checkTotp(secret, totpCodeAt(secret, now), { now })).toEqual({ valid: true, step });
    expect(checkTotp(secret, totpCodeAt(secret, at(1_800_000_015 - 30)), { now })).toEqual({
      valid: true,
      step: step - 1,
    });
    expect(checkTotp(secret, totpCodeAt(secret, at(1_800_000_015 + 30)), { now })).toEqual({
      valid: true,
      step: step + 1,
    });
    expect(checkTotp(secret, totpCodeAt(secret, at(1_800_000_015 - 60)), { now }).valid).toBe(false);
    expect(checkTotp(secret, totpCodeAt(secret, at(1_800_000_015 + 60)), { now }).valid).toBe(false);
  });

  it("refuses a code of a step at or below the last used one, so a code works once", () => {
    const secret = newTotpSecret();
    const now = at(1_800_000_015);
    const code = totpCodeAt(secret, now);
    const first = checkTotp(secret, code, { now, lastUsedStep: null });
    expect(first.valid).toBe(true);
    const lastUsedStep = first.valid ? first.step : -1;
    expect(checkTotp(secret, code, { now, lastUsedStep })).toEqual({ valid: false });
    expect(checkTotp(secret, code, { now: at(1_800_000_029), lastUsedStep })).toEqual({ valid: false });
    expect(checkTotp(secret, totpCodeAt(secret, at(1_800_000_015 - 30)), { now, lastUsedStep })).toEqual({
      valid: false,
    });
    const next = checkTotp(secret, totpCodeAt(secret, at(1_800_000_045)), { now: at(1_800_000_045), lastUsedStep });
    expect(next).toEqual({ valid: true, step: lastUsedStep + 1 });
  });

  it("refuses everything, without throwing, when the last used step is ahead of the clock", () => {
    const secret = newTotpSecret();
    const now = at(1_800_000_015);
    const step = totpStepAt(now);
    expect(checkTotp(secret, totpCodeAt(secret, now), { now, lastUsedStep: step + 1 })).toEqual({ valid: false });
    expect(checkTotp(secret, totpCodeAt(secret, now), { now, lastUsedStep: step + 100 })).toEqual({ valid: false });
  });

  it("refuses wrong and malformed codes, and ignores the space apps show in the middle", () => {
    const now = at(59);
    expect(checkTotp(rfcSecret, "287 082", { now })).toEqual({ valid: true, step: 1 });
    for (const code of ["287083", "28708", "2870820", "abcdef", "", "28708２"]) {
      expect(checkTotp(rfcSecret, code, { now }).valid).toBe(false);
    }
  });
});
