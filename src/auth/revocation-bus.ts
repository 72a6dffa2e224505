/**
 * A session was revoked (log-out, refresh-token reuse), or everything of an account
 * (password change, log-out everywhere, account disabled).
 */
export type RevocationNotice =
  | { readonly kind: "session"; readonly sessionId: string }
  | { readonly kind: "account"; readonly accountId: string };

export type RevocationListener = (notice: RevocationNotice) => void;

/**
 * Tells every instance of the service that tokens were revoked, so each forgets what it
 * cached about them and the next call is refused everywhere, not only on the instance
 * that took the log-out. Notices are hints to drop caches: the database stays the truth,
 * and a notice lost in transit is covered by the cache's short lifetime.
 */
export interface RevocationBus {
  /** Sends `notice` to every subscriber of every instance, this one included. */
  publish(notice: RevocationNotice): Promise<void>;
  /** Calls `listener` for every notice from now on; the returned function unsubscribes. */
  subscribe(listener: RevocationListener): () => void;
  /** Stops delivering; later publishes reject. */
  close(): Promise<void>;
}

/** Where a listener's exception goes, so one failing listener does not starve the rest. */
export type RevocationErrorHandler = (error: unknown) => void;

export const warnRevocationError: RevocationErrorHandler = (error) => {
  process.emitWarning(error instanceof Error ? error : new Error(String(error)), "RevocationBusWarning");
};

/** The listeners of one bus; delivers to each in turn, isolating their failures. */
export class RevocationListeners {
  readonly #listeners = new Set<RevocationListener>();
  readonly #onError: RevocationErrorHandler;

  constructor(onError: RevocationErrorHandler = warnRevocationError) {
    this.#onError = onError;
  }

  add(listener: RevocationListener): () => void {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const entry: RevocationListener = (notice) => listener(notice);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  deliver(notice: RevocationNotice): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(notice);
      } catch (error) {
        this.#onError(error);
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

/** The notice in `value` when it is one, checked field by field (it may come off the wire). */
export function asRevocationNotice(value: unknown): RevocationNotice | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { kind, sessionId, accountId } = value as Record<string, unknown>;
  if (kind === "session" && typeof sessionId === "string" && sessionId !== "") return { kind, sessionId };
  if (kind === "account" && typeof accountId === "string" && accountId !== "") return { kind, accountId };
  return undefined;
}

/**
 * The bus of a single instance (the embedded mode). Delivery is synchronous: every
 * listener has run before `publish` returns its promise, so a revocation holds for the
 * very next call.
 */
export class InProcessRevocationBus implements RevocationBus {
  readonly #listeners: RevocationListeners;
  #closed = false;

  constructor(options: { onError?: RevocationErrorHandler } = {}) {
    this.#listeners = new RevocationListeners(options.onError);
  }

  publish(notice: RevocationNotice): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("revocation bus is closed"));
    this.#listeners.deliver(notice);
    return Promise.resolve();
  }

  subscribe(listener: RevocationListener): () => void {
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }
}
