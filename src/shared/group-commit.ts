/** One item's result in a group: its value, or the error that item alone gets. */
export type GroupOutcome<R> = { readonly value: R } | { readonly error: unknown };

/** Tuning of a group. */
export interface GroupCommitOptions {
  /** Most items in one group; 64 by default. */
  readonly maxBatch?: number;
  /** Groups in flight at once; 2 by default (one commits while the next is written). */
  readonly maxInFlight?: number;
}

interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Runs the items that arrive in one event-loop turn as one group (one transaction,
 * for the callers here), each caller still getting its own outcome. `run` answers an
 * outcome per item, in order, or throws when the group failed as a whole (a deadlock, a
 * statement the database refused, an outage): then each item is run again alone, so an
 * item that cannot be written fails by itself and the others are not held hostage.
 */
export class GroupCommit<T, R> {
  readonly #run: (items: readonly T[]) => Promise<GroupOutcome<R>[]>;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  readonly #queue: Pending<T, R>[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #inFlight = 0;

  constructor(run: (items: readonly T[]) => Promise<GroupOutcome<R>[]>, options: GroupCommitOptions = {}) {
    this.#run = run;
    this.#maxBatch = Math.max(1, options.maxBatch ?? 64);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 2);
  }

  /** Queues an item; settles when its group has committed (or failed). */
  add(item: T): Promise<R> {
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#queue.push({ item, resolve, reject });
    this.#schedule();
    return promise;
  }

  #schedule(): void {
    if (this.#scheduled !== undefined || this.#inFlight >= this.#maxInFlight || this.#queue.length === 0) return;
    // After this turn's I/O callbacks: what got this far together shares a group.
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      void this.#write(this.#queue.splice(0, this.#maxBatch));
    });
  }

  async #write(batch: Pending<T, R>[]): Promise<void> {
    this.#inFlight++;
    try {
      const outcomes = await this.#outcomes(batch.map((pending) => pending.item));
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (outcome === undefined) pending.reject(new Error("a group answered fewer outcomes than items"));
        else if ("error" in outcome) pending.reject(outcome.error);
        else pending.resolve(outcome.value);
      });
    } finally {
      this.#inFlight--;
      this.#schedule();
    }
  }

  async #outcomes(items: readonly T[]): Promise<GroupOutcome<R>[]> {
    try {
      return await this.#run(items);
    } catch (error) {
      if (items.length === 1) return [{ error }];
      return Promise.all(
        items.map((item) =>
          this.#run([item]).then(
            (alone) => alone[0] ?? { error: new Error("a group answered no outcome") },
            (alone: unknown) => ({ error: alone }),
          ),
        ),
      );
    }
  }
}
