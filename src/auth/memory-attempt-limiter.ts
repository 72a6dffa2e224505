import {
  type AttemptLimiter,
  type AttemptLimitsByKind,
  type AttemptVerdict,
  defaultAttemptLimits,
  storedKeys,
  verdict,
} from "./attempt-limiter.ts";

/** Options of the in-process limiter. */
export interface MemoryAttemptLimiterOptions {
  readonly limits?: AttemptLimitsByKind;
  /** Most keys kept; past it expired windows are dropped, then the oldest down to 90%. */
  readonly maxKeys?: number;
  /** Milliseconds since the epoch; injected so tests can move time. */
  readonly now?: () => number;
}

interface Window {
  count: number;
  readonly endsAt: number;
}

/**
 * The in-process limiter of the embedded mode, with the same semantics as the Redis one
 * but counting for this process only. Memory is bounded: at `maxKeys` (100 000 by
 * default, some 20 MB) expired windows are swept, and if all are live the oldest is
 * dropped (down to 90%), which a flood of distinct keys could use to clear a lock-out early; a
 * deployment with real users runs the Redis limiter.
 */
export class MemoryAttemptLimiter implements AttemptLimiter {
  readonly #limits: AttemptLimitsByKind;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  constructor(options: MemoryAttemptLimiterOptions = {}) {
    this.#limits = options.limits ?? defaultAttemptLimits;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  async check(keys: readonly string[]): Promise<AttemptVerdict> {
    const now = this.#now();
    return verdict(
      storedKeys(keys, this.#limits).map(({ id, limit }) => {
        const window = this.#live(id, now);
        return { count: window?.count ?? 0, remainingMs: window === undefined ? 0 : window.endsAt - now, limit };
      }),
    );
  }

  async fail(keys: readonly string[]): Promise<void> {
    const now = this.#now();
    for (const { id, windowMs } of storedKeys(keys, this.#limits)) {
      const window = this.#live(id, now);
      if (window !== undefined) {
        window.count += 1;
        continue;
      }
      this.#makeRoom(now);
      this.#windows.set(id, { count: 1, endsAt: now + windowMs });
    }
  }

  async attempt(keys: readonly string[]): Promise<AttemptVerdict> {
    const now = this.#now();
    const before = storedKeys(keys, this.#limits).map(({ id, limit, windowMs }) => {
      let window = this.#live(id, now);
      if (window === undefined) {
        this.#makeRoom(now);
        window = { count: 0, endsAt: now + windowMs };
        this.#windows.set(id, window);
      }
      window.count += 1;
      return { count: window.count - 1, remainingMs: window.endsAt - now, limit };
    });
    return verdict(before);
  }

  async forgive(keys: readonly string[]): Promise<void> {
    const now = this.#now();
    for (const { id } of storedKeys(keys, this.#limits)) {
      const window = this.#live(id, now);
      if (window !== undefined && window.count > 0) window.count -= 1;
    }
  }

  async reset(keys: readonly string[]): Promise<void> {
    for (const { id } of storedKeys(keys, this.#limits)) this.#windows.delete(id);
  }

  /** How many keys are held (for tests of the bound). */
  get size(): number {
    return this.#windows.size;
  }

  #live(id: string, now: number): Window | undefined {
    const window = this.#windows.get(id);
    if (window !== undefined && window.endsAt <= now) {
      this.#windows.delete(id);
      return undefined;
    }
    return window;
  }

  #makeRoom(now: number): void {
    if (this.#windows.size < this.#maxKeys) return;
    for (const [id, window] of this.#windows) if (window.endsAt <= now) this.#windows.delete(id);
    // Map iteration follows insertion, so the first keys are the oldest windows. Going down
    // to 90% keeps the sweep above from running on every new key while the map is full.
    const target = Math.floor(this.#maxKeys * 0.9);
    while (this.#windows.size > target) {
      const oldest = this.#windows.keys().next();
      if (oldest.done) break;
      this.#windows.delete(oldest.value);
    }
  }
}
