import { commonPasswords } from "./common-passwords.ts";

/** The length bounds, in characters (code points), as the contract's protovalidate rules. */
export const passwordLength = { min: 12, max: 128 } as const;

/** What the policy knows about the person choosing the password. */
export interface PasswordContext {
  readonly email: string;
  readonly givenName: string;
  readonly familyName: string;
}

/** The sentences `passwordProblems` answers with, for a person reading them in an app. */
export const passwordMessages = {
  tooShort: `Use at least ${passwordLength.min} characters.`,
  tooLong: `Use at most ${passwordLength.max} characters.`,
  onlyDigits: "Use more than digits: add letters or words.",
  fewCharacters: "Use more different characters: this password repeats only a few.",
  sequence: "Avoid a run of letters or digits such as abcd… or qwerty… as the whole password.",
  // Never quotes the password or the part found: these messages may end up in logs.
  personal: "Do not use your name or your email address in your password, not even inside a word.",
  common: "This password is one of the most common ones: choose something others are unlikely to use.",
} as const;

const minDistinctCharacters = 5;
const minPersonalTokenLength = 3;
/** Keyboard rows and the alphabet: a password that is a stretch of one of these is guessed early. */
const sequences = [
  "abcdefghijklmnopqrstuvwxyz",
  "qwertyuiopasdfghjklzxcvbnm",
  "azertyuiopqsdfghjklmwxcvbn",
  "0123456789",
];
/** The usual letter substitutions, undone before looking a password up. */
const leet: Readonly<Record<string, string>> = {
  "@": "a",
  "4": "a",
  "8": "b",
  "3": "e",
  "9": "g",
  "1": "i",
  "!": "i",
  "0": "o",
  $: "s",
  "5": "s",
  "7": "t",
  "+": "t",
};

/**
 * What is wrong with `password` as a new password, one sentence per problem; empty when
 * it is acceptable. Follows NIST SP 800-63B: length, a blocklist of common and personal
 * values, no composition rules beyond refusing only digits.
 */
export function passwordProblems(password: string, context: PasswordContext): string[] {
  const characters = [...password];
  const problems: string[] = [];
  if (characters.length < passwordLength.min) problems.push(passwordMessages.tooShort);
  if (characters.length > passwordLength.max) problems.push(passwordMessages.tooLong);
  if (characters.length === 0) return problems;
  const lower = password.normalize("NFKC").toLowerCase();
  if (/^[0-9]+$/.test(lower)) problems.push(passwordMessages.onlyDigits);
  else if (new Set(characters).size < minDistinctCharacters) problems.push(passwordMessages.fewCharacters);
  else if (isSequence(lower)) problems.push(passwordMessages.sequence);
  if (containsPersonal(lower, context)) problems.push(passwordMessages.personal);
  if (isCommon(lower)) problems.push(passwordMessages.common);
  return problems;
}

function isSequence(lower: string): boolean {
  const reversed = [...lower].reverse().join("");
  return sequences.some(
    (sequence) => (sequence + sequence).includes(lower) || (sequence + sequence).includes(reversed),
  );
}

/**
 * Common as it is, with separators dropped, with the usual substitutions undone, or once
 * the digits and symbols around it are cut ("P@ssw0rd2024!" is "password").
 */
function isCommon(lower: string): boolean {
  const compact = lower.replace(/[\s._-]+/g, "");
  const core = compact.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, "");
  const candidates = [lower, compact, unLeet(compact), core, unLeet(core)];
  return candidates.some((candidate) => commonPasswords.has(candidate));
}

function unLeet(value: string): string {
  return [...value].map((character) => leet[character] ?? character).join("");
}

/** Whether the password holds the person's name or email local part, ignoring separators and substitutions. */
function containsPersonal(lower: string, context: PasswordContext): boolean {
  const haystacks = [lower.replace(/[^\p{L}\p{N}]+/gu, ""), unLeet(lower).replace(/[^\p{L}\p{N}]+/gu, "")];
  return personalTokens(context).some((token) => haystacks.some((haystack) => haystack.includes(token)));
}

/** The email's local part and the names, whole and in their parts ("mary-ann", "mary", "ann"). */
function personalTokens(context: PasswordContext): string[] {
  const at = context.email.lastIndexOf("@");
  const local = at < 0 ? context.email : context.email.slice(0, at);
  const tokens: string[] = [];
  for (const value of [local, context.givenName, context.familyName]) {
    const lower = value.normalize("NFKC").toLowerCase();
    const parts = lower.split(/[^\p{L}\p{N}]+/u);
    tokens.push(parts.join(""), ...parts);
  }
  return tokens.filter((token) => [...token].length >= minPersonalTokenLength);
}
