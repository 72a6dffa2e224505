import { RE2JS } from "@bufbuild/re2";
import { describe, expect, it } from "vitest";
import { patternMatcher } from "../../src/rpc/request-validation.ts";

/** Patterns of the contract's `string.pattern` rules the platform RegExp takes over from RE2. */
const patterns = [
  "^$|^[A-Za-z][A-Za-z0-9+.-]*:[^\\s]*$",
  "^[^\\s]*$",
  "^[^\\sa-c]+$",
  "^-?[0-9]{1,12}(\\.[0-9]{1,6})?$",
  "^patients/[A-Za-z0-9_-]{1,64}$",
];

/** Inputs around what the patterns tell apart: RE2's `\s` is only `\t\n\f\r `. */
const inputs = [
  "",
  "C09AA05",
  "http://www.whocc.no/atc",
  "http://loinc.org/a b",
  "code\u000bwith-vertical-tab",
  "code\u00a0with-nbsp",
  "code\u2003with-em-space",
  "tab\there",
  "line\nbreak",
  "\f",
  "ümlaut",
  "emoji😀",
  "abc",
  "xyz",
  "-12.5",
  "12.",
  "patients/abc_DEF-1",
  "patients/",
];

describe("request patterns: the platform RegExp agrees with RE2", () => {
  it("matches exactly what RE2 matches, on negated classes and RE2's \\s too", () => {
    const match = patternMatcher();
    for (const pattern of patterns) {
      const re2 = RE2JS.compile(pattern);
      for (const input of inputs) {
        expect({ pattern, input, matched: match(pattern, input) }).toEqual({
          pattern,
          input,
          matched: re2.test(input),
        });
      }
    }
  });

  it("takes only negated classes it can match in linear time, and stays correct on a long input", () => {
    const match = patternMatcher();
    // Ambiguous (the class and what follows both take "a"): left to RE2, and still right.
    expect(match("^[^\\s]*a$", `${"a".repeat(100_000)}b`)).toBe(false);
    expect(match("^[^\\s]*$", `${"x".repeat(1_000_000)} `)).toBe(false);
    expect(match("^[^\\s]*$", "x".repeat(1_000_000))).toBe(true);
  });
});
