import { accessSync, constants } from "node:fs";

/**
 * Small readers for environment variables. Each returns the parsed value, or records
 * one problem in `problems` and returns undefined, so that `loadConfig` can report
 * every bad variable at once instead of making people fix them one restart at a time.
 *
 * An empty value counts as unset: `.env` files and compose files often carry
 * `NAME=` for "not configured".
 */
export class EnvReader {
  readonly problems: string[] = [];
  readonly #env: Readonly<Record<string, string | undefined>>;

  constructor(env: Readonly<Record<string, string | undefined>>) {
    this.#env = env;
  }

  /** The trimmed value, or undefined when unset or blank. */
  raw(name: string): string | undefined {
    const value = this.#env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  }

  /** Records a problem with a variable. The value is not echoed: it may be a secret. */
  problem(name: string, description: string): undefined {
    this.problems.push(`${name} ${description}`);
    return undefined;
  }

  /** A whole number within [min, max]. */
  integer(name: string, fallback: number, min: number, max: number): number {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    const value = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
    if (Number.isNaN(value) || value < min || value > max) {
      this.problem(name, `must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  /** One of `allowed` (case-insensitive). */
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const text = this.raw(name)?.toLowerCase();
    if (text === undefined) return fallback;
    const match = allowed.find((candidate) => candidate === text);
    if (match === undefined) {
      this.problem(name, `must be one of: ${allowed.join(", ")}`);
      return fallback;
    }
    return match;
  }

  /**
   * An absolute URL whose scheme is in `schemes` (without the colon). The message
   * names the variable and the expected form but never repeats the value, which can
   * hold a password (`postgres://user:secret@host/db`).
   */
  url(name: string, schemes: readonly string[]): string | undefined {
    const text = this.raw(name);
    if (text === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      return this.problem(name, `must be a URL like ${schemes[0]}://host:port`);
    }
    const scheme = parsed.protocol.slice(0, -1);
    if (!schemes.includes(scheme)) return this.problem(name, `must use one of the schemes: ${schemes.join(", ")}`);
    if (parsed.hostname === "") return this.problem(name, "must name a host");
    return text;
  }

  /** A path to a file this process can read. */
  readableFile(name: string): string | undefined {
    const path = this.raw(name);
    if (path === undefined) return undefined;
    try {
      accessSync(path, constants.R_OK);
      return path;
    } catch {
      return this.problem(name, "must name a readable file");
    }
  }
}
