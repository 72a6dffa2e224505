import type { DescMessage, Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { RE2JS } from "@bufbuild/re2";
import { Code, type ConnectError } from "@connectrpc/connect";
import { statusError } from "./error-mapping.ts";

/**
 * Checks requests against the protovalidate rules declared in proto/. A request
 * that breaks them is refused with INVALID_ARGUMENT and one BadRequest field
 * violation per broken rule, before any handler runs.
 */
export class RequestValidator {
  readonly #validator: Validator = createValidator({ regexMatch: patternMatcher() });

  /** The error to answer with, or undefined when the request is valid. */
  check(schema: DescMessage, message: Message): ConnectError | undefined {
    const result = this.#validator.validate(schema, message);
    if (result.kind === "valid") return undefined;
    if (result.kind === "error") {
      // A rule that cannot compile is our bug, not the client's; fail loudly in tests.
      throw result.error;
    }
    const violations = result.violations.map((v) => ({
      field: pathToString(v.field),
      description: v.message,
    }));
    const first = violations[0];
    const summary = first ? `${first.field || "request"}: ${first.description}` : "invalid request";
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
    return statusError(Code.InvalidArgument, "INVALID_REQUEST", `Invalid request: ${summary}${more}.`, violations);
  }
}

/**
 * The matcher of `string.pattern` rules and CEL `matches()`. protovalidate's default
 * matches with a pure-JavaScript RE2 (linear time whatever the pattern), which was
 * about half of validating a CreatePatient (~15 of ~30 µs) and takes over a second on
 * a 1 MiB string. Patterns that a backtracking engine also matches in linear time
 * (`linearRegExp`) run on the platform RegExp instead; every other pattern stays on
 * RE2. Compiled patterns are kept, up to a bound, as protovalidate does (CEL rules
 * may build patterns from input).
 */
export function patternMatcher(): (pattern: string, against: string) => boolean {
  const matchers = new Map<string, RegExp | RE2JS>();
  return (pattern, against) => {
    let matcher = matchers.get(pattern);
    if (matcher === undefined) {
      if (matchers.size >= matcherLimit) matchers.clear();
      matcher = linearRegExp(pattern) ?? RE2JS.compile(pattern);
      matchers.set(pattern, matcher);
    }
    if (!(matcher instanceof RegExp)) return matcher.test(against);
    try {
      return matcher.test(against);
    } catch {
      // V8 keeps a backtrack entry per group repetition; on strings of megabytes its stack overflows.
      return RE2JS.compile(pattern).test(against);
    }
  };
}

const matcherLimit = 1024;

/**
 * A pattern as a platform RegExp when it is in a subset on which RE2 and RegExp (with
 * the `u` flag) agree and backtracking stays linear; undefined otherwise. The subset:
 * alternatives that each start with `^` (and may end with `$`), made of printable
 * ASCII literals, escaped punctuation, `\d`, `\w`, classes (negated too, and with
 * `\s`, which the RegExp is given as RE2's `\t\n\f\r `), and non-nested groups
 * without alternation, each with a greedy quantifier. It must also
 * be deterministic: wherever a quantifier could stop or go on, the next character
 * decides, because what it repeats and what may follow cannot begin with the same
 * character. A failed match then backtracks one step per choice and no further.
 * Our own patterns (`^$|^\+[1-9][0-9]{6,14}$`, `^patients/[A-Za-z0-9_-]{1,64}$`,
 * `^[^\s]*$`) are.
 */
function linearRegExp(pattern: string): RegExp | undefined {
  const reader = new PatternReader(pattern);
  const alternatives = reader.alternatives();
  if (alternatives === undefined || !alternatives.every((items) => deterministic(items, 0n))) return undefined;
  try {
    return new RegExp(reader.translated(), "u");
  } catch {
    return undefined;
  }
}

/** A set of characters: bit `c` for ASCII character code `c`, bit 128 for every character beyond ASCII. */
type CharSet = bigint;

/** One quantified atom: a character (class) or a group, repeated `min` to `max` times. */
interface Item {
  /** The characters a match of the item can begin with. */
  readonly first: CharSet;
  readonly min: number;
  readonly max: number;
  readonly body?: readonly Item[];
}

function deterministic(items: readonly Item[], follow: CharSet): boolean {
  return items.every((item, index) => {
    const next = firstOf(items, index + 1, follow);
    if (item.min !== item.max && (item.first & next) !== 0n) return false;
    return item.body === undefined || deterministic(item.body, item.max > 1 ? next | item.first : next);
  });
}

/** What a match of `items` from `from` on can begin with, with `follow` if they can all be skipped. */
function firstOf(items: readonly Item[], from: number, follow: CharSet): CharSet {
  let set = 0n;
  for (let index = from; index < items.length; index++) {
    const item = items[index] as Item;
    set |= item.first;
    if (item.min > 0) return set;
  }
  return set | follow;
}

const range = (from: string, to: string): CharSet =>
  ((1n << BigInt(to.charCodeAt(0) - from.charCodeAt(0) + 1)) - 1n) << BigInt(from.charCodeAt(0));
const digits = range("0", "9");
const word = digits | range("A", "Z") | range("a", "z") | range("_", "_");
/** RE2's `\s` (Perl's): narrower than JavaScript's, which also has `\v` and Unicode spaces. */
const re2Space = "\t\n\f\r ";
const space = [...re2Space].reduce((set, c) => set | (1n << BigInt(c.charCodeAt(0))), 0n);
const anyCharacter = (1n << 129n) - 1n;
/** Characters with a meaning in a pattern; escaped, they (and `/`) stand for themselves in both engines. */
const syntax = "^$\\.*+?()[]{}|";
const maxRepeat = 1000; // RE2's limit

/** Reads a pattern of the subset `linearRegExp` accepts; any method answers undefined for anything else. */
class PatternReader {
  #at = 0;
  readonly #text: string;
  /** Where the `\s` escapes read are, to give the RegExp RE2's meaning of them. */
  readonly #spaces: number[] = [];

  constructor(text: string) {
    this.#text = text;
  }

  /** The pattern read, for a platform RegExp: each `\s` (only in classes) spelled out as RE2 means it. */
  translated(): string {
    let text = this.#text;
    for (const at of [...this.#spaces].reverse()) text = `${text.slice(0, at)}\\t\\n\\f\\r ${text.slice(at + 2)}`;
    return text;
  }

  alternatives(): Item[][] | undefined {
    const result: Item[][] = [];
    for (;;) {
      if (!this.#take("^")) return undefined;
      const items = this.#sequence(false);
      if (items === undefined) return undefined;
      result.push(items);
      this.#take("$");
      if (this.#at === this.#text.length) return result;
      if (!this.#take("|")) return undefined;
    }
  }

  #sequence(inGroup: boolean): Item[] | undefined {
    const items: Item[] = [];
    for (let c = this.#peek(); c !== "" && c !== "$" && c !== "|" && c !== ")"; c = this.#peek()) {
      const item = this.#item(inGroup);
      if (item === undefined) return undefined;
      items.push(item);
    }
    return items;
  }

  #item(inGroup: boolean): Item | undefined {
    let first: CharSet | undefined;
    let body: Item[] | undefined;
    if (this.#take("(")) {
      if (inGroup || (this.#take("?") && !this.#take(":"))) return undefined;
      body = this.#sequence(true);
      if (body === undefined || !this.#take(")") || body.every((item) => item.min === 0)) return undefined;
      first = firstOf(body, 0, 0n);
    } else if (this.#take("[")) {
      first = this.#classBody();
    } else {
      first = this.#single(false);
    }
    if (first === undefined) return undefined;
    const repeat = this.#quantifier();
    if (repeat === undefined) return undefined;
    return body === undefined ? { first, ...repeat } : { first, ...repeat, body };
  }

  /** A literal, an escape or (in a class) a range bound. */
  #single(inClass: boolean): CharSet | undefined {
    const c = this.#next();
    if (c === "\\") {
      const escaped = this.#next();
      if (escaped === "d") return digits;
      if (escaped === "w") return word;
      if (escaped === "s" && inClass) {
        this.#spaces.push(this.#at - 2);
        return space;
      }
      const literal = escaped !== "" && (syntax.includes(escaped) || escaped === "/" || (inClass && escaped === "-"));
      return literal ? range(escaped, escaped) : undefined;
    }
    const printable = c >= " " && c <= "~";
    if (!printable || c === "[" || c === "]" || (!inClass && syntax.includes(c))) return undefined;
    return range(c, c);
  }

  /** After `[`: literals, escapes and ranges up to `]`, perhaps negated; an unescaped `-` only first or last. */
  #classBody(): CharSet | undefined {
    const negated = this.#take("^");
    if (this.#peek() === "]" || this.#peek() === "^") return undefined;
    const opening = this.#at;
    let set = 0n;
    while (!this.#take("]")) {
      const start = this.#at;
      const member = this.#single(true);
      if (member === undefined) return undefined;
      const literal = this.#at === start + 1 ? this.#text[start] : undefined;
      if (literal === "-" && start !== opening && this.#peek() !== "]") return undefined;
      if (this.#peek() === "-" && this.#text[this.#at + 1] !== "]") {
        const high = this.#text[this.#at + 1] ?? "";
        if (literal === undefined || high === "\\" || high === "[" || high < literal || high > "~") return undefined;
        this.#at += 2;
        set |= range(literal, high);
      } else {
        set |= member;
      }
    }
    return negated ? anyCharacter & ~set : set;
  }

  #quantifier(): { min: number; max: number } | undefined {
    let repeat: { min: number; max: number } = { min: 1, max: 1 };
    if (this.#take("?")) repeat = { min: 0, max: 1 };
    else if (this.#take("*")) repeat = { min: 0, max: Number.POSITIVE_INFINITY };
    else if (this.#take("+")) repeat = { min: 1, max: Number.POSITIVE_INFINITY };
    else if (this.#take("{")) {
      const counts = /^(\d{1,4})(,(\d{0,4}))?\}/.exec(this.#text.slice(this.#at));
      if (counts === null) return undefined;
      this.#at += counts[0].length;
      const min = Number(counts[1]);
      const max = counts[2] === undefined ? min : counts[3] ? Number(counts[3]) : Number.POSITIVE_INFINITY;
      if (min > maxRepeat || (max !== Number.POSITIVE_INFINITY && (max > maxRepeat || max < min))) return undefined;
      repeat = { min, max };
    }
    // Lazy, possessive or stacked quantifiers are outside the subset.
    return "?*+{".includes(this.#peek()) && this.#peek() !== "" ? undefined : repeat;
  }

  #peek(): string {
    return this.#text[this.#at] ?? "";
  }

  #next(): string {
    return this.#text[this.#at++] ?? "";
  }

  #take(c: string): boolean {
    if (this.#text[this.#at] !== c) return false;
    this.#at++;
    return true;
  }
}
