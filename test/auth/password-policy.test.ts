import { describe, expect, it } from "vitest";
import { commonPasswords } from "../../src/auth/common-passwords.ts";
import { passwordMessages, passwordProblems } from "../../src/auth/password-policy.ts";

const asha = { email: "asha.rao@example.com", givenName: "Asha", familyName: "Rao" };

describe("passwordProblems", () => {
  it("accepts long passphrases and random passwords, with no composition rules", () => {
    for (const password of [
      "tangerine kites over Pune",
      "dragonfly-sunset-42",
      "Xk9#mQ2$vL7!",
      "summer in pondicherry",
    ]) {
      expect(passwordProblems(password, asha)).toEqual([]);
    }
  });

  it("asks for 12 to 128 characters, counting characters rather than bytes", () => {
    expect(passwordProblems("kite-Pune-42", asha)).toEqual([]);
    expect(passwordProblems("kite-Pune-4", asha)).toEqual([passwordMessages.tooShort]);
    expect(passwordProblems("", asha)).toEqual([passwordMessages.tooShort]);
    expect(passwordProblems("ಕನ್ನಡ ಗಾಳಿಪಟ ಹಾರುತ್ತಿದೆ", asha)).toEqual([]);
    const tail = "x7-kite-Pune".repeat(11); // 132 characters
    expect(passwordProblems(tail.slice(0, 128), asha)).toEqual([]);
    expect(passwordProblems(tail.slice(0, 129), asha)).toEqual([passwordMessages.tooLong]);
  });

  it("refuses only digits, a few repeated characters, and keyboard or alphabet runs", () => {
    expect(passwordProblems("904182736451", asha)).toEqual([passwordMessages.onlyDigits]);
    expect(passwordProblems("abababababab", asha)).toEqual([passwordMessages.fewCharacters]);
    expect(passwordProblems("!!!!!!!!!!!!!!", asha)).toEqual([passwordMessages.fewCharacters]);
    expect(passwordProblems("abcdefghijklmn", asha)).toEqual([passwordMessages.sequence]);
    expect(passwordProblems("zyxwvutsrqpo", asha)).toEqual([passwordMessages.sequence]);
    expect(passwordProblems("QWERTYUIOPASDF", asha)).toEqual([passwordMessages.sequence]);
  });

  it("refuses the person's names and email local part, in any case, inside words and with substitutions", () => {
    for (const password of [
      "asharao-garden-77",
      "MyNameIsASHA!!2024",
      "gardens-of-r@o-42",
      "asha.rao.garden",
      "Kite-Asha-1990!",
    ]) {
      expect(passwordProblems(password, asha)).toEqual([passwordMessages.personal]);
    }
    const li = { email: "li.wu@example.com", givenName: "Li", familyName: "Wu" };
    expect(passwordProblems("lively-wumpus-tea", li)).toEqual([]); // parts under 3 characters are ignored
  });

  it("refuses common passwords, also with digits or symbols around them and usual substitutions", () => {
    for (const password of [
      "Password2024!",
      "P@ssw0rd12345",
      "qwertyuiop123",
      "iloveyou1234",
      "monkey123456",
      "2024-sunshine!",
      "correct horse battery staple",
      "Telemed-2024-!!",
      "passwordpassword",
    ]) {
      expect(passwordProblems(password, asha), password).toEqual([passwordMessages.common]);
    }
  });

  it("lists every problem at once, each a sentence for a person", () => {
    const problems = passwordProblems("Asha123", asha);
    expect(problems).toEqual([passwordMessages.tooShort, passwordMessages.personal]);
    for (const message of Object.values(passwordMessages)) expect(message).toMatch(/^[A-Z].*[.]$/);
  });

  it("ships a few hundred common passwords, in lower case", () => {
    expect(commonPasswords.size).toBeGreaterThanOrEqual(300);
    for (const entry of commonPasswords) expect(entry).toBe(entry.toLowerCase());
  });
});
