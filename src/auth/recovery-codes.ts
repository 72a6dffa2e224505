import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * 32 symbols, so each is exactly 5 random bits: digits and capitals without 0, 1, I
 * and O, which people confuse when they copy a code from paper.
 */
export const recoveryCodeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/** Codes per set; a new set replaces the old one. */
export const recoveryCodeCount = 10;

/** Three groups of four: 12 symbols, 60 bits per code. */
const groups = 3;
const groupLength = 4;

/** A fresh set: the codes to show the person once, and the hashes to store. */
export interface RecoveryCodeSet {
  readonly codes: string[];
  readonly hashes: string[];
}

/**
 * `count` new one-time codes like `ABCD-EFGH-JKLM`. Random bytes are masked to 5 bits;
 * 256 is a multiple of 32, so every symbol is equally likely.
 */
export function generateRecoveryCodes(count: number = recoveryCodeCount): RecoveryCodeSet {
  const codes: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(groups * groupLength);
    const symbols = [...bytes].map((byte) => recoveryCodeAlphabet[byte & 31]).join("");
    codes.push(symbols.match(new RegExp(`.{${groupLength}}`, "g"))!.join("-"));
  }
  return { codes, hashes: codes.map(hashRecoveryCode) };
}

/** Upper case without dashes or spaces: how a code is hashed, however it was typed. */
export function normaliseRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]+/g, "");
}

/**
 * SHA-256 (hex) of the normalised code. A fast hash is enough: 60 random bits cannot be
 * found by guessing from a leaked hash, unlike a password.
 */
export function hashRecoveryCode(code: string): string {
  return createHash("sha256").update(normaliseRecoveryCode(code)).digest("hex");
}

/**
 * The index of the stored hash `code` matches, or -1. Every hash is compared in constant
 * time and the loop does not stop at a match, so timing tells nothing about which.
 */
export function matchRecoveryCode(code: string, hashes: readonly string[]): number {
  const candidate = Buffer.from(hashRecoveryCode(code), "hex");
  let found = -1;
  hashes.forEach((hash, index) => {
    const stored = Buffer.from(hash, "hex");
    if (stored.length === candidate.length && timingSafeEqual(stored, candidate) && found < 0) found = index;
  });
  return found;
}
