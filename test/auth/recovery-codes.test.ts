import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  matchRecoveryCode,
  recoveryCodeAlphabet,
} from "../../src/auth/recovery-codes.ts";

describe("recovery codes", () => {
  it("makes ten distinct codes like ABCD-EFGH-JKLM from an unambiguous alphabet, 60 bits each", () => {
    const { codes, hashes } = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$/);
    expect(recoveryCodeAlphabet).toHaveLength(32);
    expect(recoveryCodeAlphabet).not.toMatch(/[01IO]/);
    expect(Math.log2(recoveryCodeAlphabet.length) * 12).toBeGreaterThanOrEqual(60);
    expect(hashes).toEqual(codes.map(hashRecoveryCode));
  });

  it("uses every symbol of the alphabet and nothing else", () => {
    const seen = new Set(generateRecoveryCodes(200).codes.join("").replaceAll("-", ""));
    expect([...seen].sort().join("")).toBe([...recoveryCodeAlphabet].sort().join(""));
  });

  it("stores only SHA-256 hashes of the normalised code", () => {
    const { codes, hashes } = generateRecoveryCodes(1);
    const code = codes[0]!;
    expect(hashes[0]).toBe(createHash("sha256").update(code.replaceAll("-", "")).digest("hex"));
    expect(hashes[0]).not.toContain(code.slice(0, 4));
  });

  it("matches a code however it is typed: lower case, without dashes, with spaces", () => {
    const { codes, hashes } = generateRecoveryCodes();
    const code = codes[3]!;
    expect(matchRecoveryCode(code, hashes)).toBe(3);
    expect(matchRecoveryCode(code.toLowerCase(), hashes)).toBe(3);
    expect(matchRecoveryCode(code.replaceAll("-", ""), hashes)).toBe(3);
    expect(matchRecoveryCode(` ${code.replaceAll("-", " ")} `, hashes)).toBe(3);
  });

  it("answers -1 for an unknown code, and for a used code once its hash is removed", () => {
    const { codes, hashes } = generateRecoveryCodes();
    expect(matchRecoveryCode("ABCD-EFGH-JKLM", hashes)).toBe(-1);
    expect(matchRecoveryCode("", hashes)).toBe(-1);
    expect(matchRecoveryCode(codes[0]!, [])).toBe(-1);
    const used = matchRecoveryCode(codes[5]!, hashes);
    const remaining = hashes.filter((_, index) => index !== used);
    expect(matchRecoveryCode(codes[5]!, remaining)).toBe(-1);
    expect(matchRecoveryCode(codes[6]!, remaining)).toBe(5);
  });

  it("ignores stored entries that are not SHA-256 hex", () => {
    const { codes, hashes } = generateRecoveryCodes(2);
    expect(matchRecoveryCode(codes[1]!, ["", "zz", hashes[0]!.slice(2), hashes[1]!])).toBe(3);
  });
});
