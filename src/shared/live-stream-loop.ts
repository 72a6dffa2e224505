/**
 * Wake-ups of one live server stream. The bus calls `poke` when something the stream
 * shows may have committed; the stream's loop waits on them. A poke during a read
 * leaves the stream dirty, so the loop reads again instead of missing it.
 */
export class StreamWakeups {
  #dirty = false;
  #wake: (() => void) | undefined;

  /** Something may have committed: read again, now. */
  readonly poke = (): void => {
    this.#dirty = true;
    this.#wake?.();
  };

  get dirty(): boolean {
    return this.#dirty;
  }

  /** True when poked since the last call; clears the mark (before the read it triggers). */
  takeDirty(): boolean {
    const dirty = this.#dirty;
    this.#dirty = false;
    return dirty;
  }

  /** Resolves after `ms`, on a poke, or when `signal` aborts, whichever comes first. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }
}

/** How a live stream follows its store after the first read. */
export interface LiveLoopOptions<E> {
  readonly wakeups: StreamWakeups;
  readonly signal: AbortSignal;
  readonly heartbeatIntervalMs: number;
  /** A read even without a poke, at least this often: a lost poke is late, never missed. */
  readonly catchUpIntervalMs: number;
  /** Sends what committed since the last read; returns true when the stream is done. */
  readonly catchUp: () => AsyncGenerator<E, boolean | undefined>;
  /** Re-checks the caller's access (throwing ends the stream) and builds the heartbeat. */
  readonly heartbeat: () => Promise<E>;
}

/**
 * The rest of a live stream: wait for a poke, the catch-up interval or the next
 * heartbeat; read on a poke or when the catch-up is due; send a heartbeat when it is.
 */
export async function* liveLoop<E>(options: LiveLoopOptions<E>): AsyncGenerator<E, void> {
  const { wakeups, signal } = options;
  let nextHeartbeat = Date.now() + options.heartbeatIntervalMs;
  let nextCatchUp = Date.now() + options.catchUpIntervalMs;
  while (!signal.aborted) {
    if (!wakeups.dirty) await wakeups.wait(Math.max(0, Math.min(nextHeartbeat, nextCatchUp) - Date.now()), signal);
    if (signal.aborted) return;
    if (wakeups.takeDirty() || Date.now() >= nextCatchUp) {
      nextCatchUp = Date.now() + options.catchUpIntervalMs;
      if ((yield* options.catchUp()) === true) return;
    }
    if (Date.now() >= nextHeartbeat) {
      const heartbeat = await options.heartbeat();
      nextHeartbeat = Date.now() + options.heartbeatIntervalMs;
      yield heartbeat;
    }
  }
}
