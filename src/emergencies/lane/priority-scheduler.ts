import type { Priority } from "../emergency.ts";

/** One unit of work: its priority, and the emergency it concerns (never two of one at a time). */
export interface Scheduled {
  readonly priority: Priority;
  readonly key: string;
}

/**
 * Says whether more urgent work than `priority` is waiting upstream but has not
 * arrived yet (JetStream: a higher-priority consumer still has pending messages).
 */
export type HigherPending = (priority: Priority) => Promise<boolean>;

/** How long lower-priority work waits at most for more urgent work said to be on its way. */
const gateMaxMs = 250;
const gatePollMs = 5;

/**
 * Runs work P1 first, then P2, then P3, with at most `workers` at once and at most one
 * per key (a key is an emergency, so its events apply in order). Before it starts a P2
 * or P3 item it asks `higherPending`: a backlog of P1 still being fetched goes first
 * even if a P3 happened to arrive a moment earlier.
 */
export class PriorityScheduler<T extends Scheduled> {
  readonly #queues: [T[], T[], T[]] = [[], [], []];
  readonly #busyKeys = new Set<string>();
  readonly #workers: number;
  readonly #run: (item: T) => Promise<void>;
  readonly #higherPending: HigherPending | undefined;
  readonly #idle = new Set<() => void>();
  #inFlight = 0;
  #pumping = false;
  #stopped = false;

  constructor(workers: number, run: (item: T) => Promise<void>, higherPending?: HigherPending) {
    this.#workers = Math.max(1, workers);
    this.#run = run;
    this.#higherPending = higherPending;
  }

  /** Adds work; it starts as soon as a worker, its key and its priority allow. */
  push(item: T): void {
    this.#queues[item.priority - 1]?.push(item);
    // After the current turn: items pushed together (one fetched batch) are ordered before any starts.
    queueMicrotask(() => void this.#pump());
  }

  /** Items waiting or running. */
  get size(): number {
    return this.#inFlight + this.#queues.reduce((sum, queue) => sum + queue.length, 0);
  }

  /** Starts nothing more; resolves when what runs has finished. Waiting items are dropped (the lane redelivers them). */
  async stop(): Promise<T[]> {
    this.#stopped = true;
    const dropped = this.#queues.flatMap((queue) => queue.splice(0));
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.add(resolve));
    return dropped;
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#stopped && this.#inFlight < this.#workers) {
        let item = this.#next();
        if (item === undefined) break;
        if (item.priority > 1 && this.#higherPending !== undefined) {
          const until = Date.now() + gateMaxMs;
          while (
            Date.now() < until &&
            this.#next() === item &&
            (await this.#higherPending(item.priority).catch(() => false))
          ) {
            await new Promise((resolve) => setTimeout(resolve, gatePollMs));
          }
          item = this.#next();
          if (item === undefined || this.#stopped) break;
        }
        this.#start(item);
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** The most urgent waiting item whose key is free. */
  #next(): T | undefined {
    for (const queue of this.#queues) {
      const item = queue.find((candidate) => !this.#busyKeys.has(candidate.key));
      if (item !== undefined) return item;
    }
    return undefined;
  }

  #start(item: T): void {
    const queue = this.#queues[item.priority - 1] as T[];
    queue.splice(queue.indexOf(item), 1);
    this.#busyKeys.add(item.key);
    this.#inFlight += 1;
    void this.#run(item)
      .catch(() => undefined)
      .finally(() => {
        this.#inFlight -= 1;
        this.#busyKeys.delete(item.key);
        if (this.#inFlight === 0) {
          for (const resolve of this.#idle) resolve();
          this.#idle.clear();
        }
        void this.#pump();
      });
  }
}
