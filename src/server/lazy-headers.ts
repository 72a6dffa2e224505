import type { IncomingHttpHeaders } from "node:http";
import { inspect } from "node:util";

/** A header name get() can look up in Node's (lower-cased) object without Headers' own checks. */
const plainName = /^[A-Za-z0-9-]+$/;
/** A name and a value Headers would store unchanged: a lower-case token, visible ASCII without outer spaces. */
const storedName = /^[a-z0-9-]+$/;
const storedValue = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * The Headers of a native call (request metadata, response headers and trailers),
 * without building a WHATWG Headers until a call needs more than the hot path does.
 * The pipeline reads a header or two of each request and sets one response header;
 * a Headers per request, response and trailer (each its own sorted list, every
 * name and value checked and copied) cost more than that and was a good part of the
 * garbage of every call.
 *
 * - Request metadata: get() and has() read Node's header object (HTTP/2 pseudo-headers
 *   are not metadata and are skipped when it is copied).
 * - Response headers and trailers: set() of a lower-case name to a plain value is
 *   kept in a small list; forEach() of a single entry reads it from there.
 * Anything else first copies what there is into a real Headers and delegates to it, so
 * every method keeps Headers' semantics. The class inherits from Headers.prototype, so
 * `instanceof Headers` holds; it overrides every method Headers has, so none of
 * Headers' own (which check their receiver's internal slots) ever runs on it.
 */
export class LazyHeaders {
  #raw: IncomingHttpHeaders | undefined;
  /** Name, value, name, value… set through the fast path; names are unique. */
  #pairs: string[] | undefined;
  #real: Headers | undefined;

  /** Over a request's headers, or empty (response headers and trailers). */
  constructor(raw?: IncomingHttpHeaders) {
    this.#raw = raw;
  }

  /** True while nothing was set (an empty trailer needs no copy). */
  isEmpty(): boolean {
    return this.#raw === undefined && this.#pairs === undefined && (this.#real === undefined || isEmpty(this.#real));
  }

  get(name: string): string | null {
    if (this.#real === undefined && plainName.test(name)) {
      const lower = name.toLowerCase();
      const raw = this.#raw;
      if (raw !== undefined && this.#pairs === undefined) {
        const value = raw[lower];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      }
      if (raw === undefined) {
        const pairs = this.#pairs;
        const at = pairs === undefined ? -1 : indexOfName(pairs, lower);
        return at < 0 ? null : ((pairs as string[])[at + 1] as string);
      }
    }
    return this.#headers().get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  set(name: string, value: string): void {
    if (this.#real === undefined && this.#raw === undefined && storedName.test(name) && storedValue.test(value)) {
      const pairs = this.#pairs ?? [];
      this.#pairs = pairs;
      const at = indexOfName(pairs, name);
      if (at >= 0) pairs[at + 1] = value;
      else pairs.push(name, value);
      return;
    }
    this.#headers().set(name, value);
  }

  append(name: string, value: string): void {
    this.#headers().append(name, value);
  }

  delete(name: string): void {
    this.#headers().delete(name);
  }

  getSetCookie(): string[] {
    return this.#headers().getSetCookie();
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    const pairs = this.#pairs;
    if (this.#real === undefined && this.#raw === undefined && (pairs === undefined || pairs.length === 2)) {
      if (pairs !== undefined)
        callback.call(thisArg, pairs[1] as string, pairs[0] as string, this as unknown as Headers);
      return;
    }
    this.#headers().forEach((value, key) => {
      callback.call(thisArg, value, key, this as unknown as Headers);
    });
  }

  keys(): IterableIterator<string> {
    return this.#headers().keys();
  }

  values(): IterableIterator<string> {
    return this.#headers().values();
  }

  entries(): IterableIterator<[string, string]> {
    return this.#headers().entries();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#headers().entries();
  }

  [inspect.custom](depth: number, options: object): string {
    return inspect(this.#headers(), { ...options, depth });
  }

  /** The real Headers, made on first need from the request's headers or the fast-path pairs. */
  #headers(): Headers {
    let real = this.#real;
    if (real !== undefined) return real;
    real = new Headers();
    const raw = this.#raw;
    if (raw !== undefined) {
      for (const [key, value] of Object.entries(raw)) {
        if (key.charCodeAt(0) === 58 /* ":" */ || value === undefined) continue;
        real.set(key, Array.isArray(value) ? value.join(", ") : value);
      }
    }
    const pairs = this.#pairs;
    if (pairs !== undefined)
      for (let i = 0; i < pairs.length; i += 2) real.set(pairs[i] as string, pairs[i + 1] as string);
    this.#real = real;
    this.#raw = undefined;
    this.#pairs = undefined;
    return real;
  }
}
Object.setPrototypeOf(LazyHeaders.prototype, Headers.prototype);

function indexOfName(pairs: readonly string[], name: string): number {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return i;
  return -1;
}

function isEmpty(headers: Headers): boolean {
  for (const _ of headers.keys()) return false;
  return true;
}
