import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../../gen/grpc/health/v1/health_pb.js";

/**
 * A status by its name, so callers need not import the generated enum. SERVICE_UNKNOWN
 * is left out: it is what Watch says about a name nobody set, not a status to set.
 */
export type ServingStatusName = "SERVING" | "NOT_SERVING" | "UNKNOWN";

/** Called with the new status of one service name each time it changes. */
export type HealthListener = (status: ServingStatus) => void;

/** The name the health protocol uses for the server as a whole. */
export const wholeServer = "";

/**
 * The serving status of one server instance, per service name ("" is the whole
 * server), as grpc.health.v1.Health reports it. One instance per server, passed in,
 * so tests can run several servers in one process with separate health.
 *
 * After `shutdown()` the state is frozen at NOT_SERVING: a late `set(..., SERVING)`
 * from a component that has not heard of the shutdown must not tell load balancers
 * to send traffic to a server that is draining.
 */
export class HealthState {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #listeners = new Map<string, Set<HealthListener>>();
  #shutDown = false;

  /** Starts with the whole server SERVING, as gRPC servers do, unless told otherwise. */
  constructor(initial: Iterable<readonly [string, ServingStatus]> = [[wholeServer, ServingStatus.SERVING]]) {
    for (const [service, status] of initial) this.#statuses.set(service, status);
  }

  /** The status of a service name, or undefined when the name was never set. */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** Every known service name and its status. */
  entries(): IterableIterator<[string, ServingStatus]> {
    return this.#statuses.entries();
  }

  /** True once `shutdown()` ran. */
  get isShutDown(): boolean {
    return this.#shutDown;
  }

  /**
   * Records the status of a service name and tells its watchers if it changed.
   * Ignored after `shutdown()` (see the class comment).
   */
  set(service: string, status: ServingStatus | ServingStatusName): void {
    if (this.#shutDown) return;
    this.#update(service, typeof status === "string" ? ServingStatus[status] : status);
  }

  /**
   * Marks every service name NOT_SERVING and freezes the state. Call it on SIGTERM
   * before draining, so health checkers stop routing here while in-flight calls finish.
   */
  shutdown(): void {
    this.#shutDown = true;
    for (const service of [...this.#statuses.keys()]) this.#update(service, ServingStatus.NOT_SERVING);
  }

  /**
   * Calls `listener` on every later change of `service` (not with the current status:
   * read it with `get`). Returns the function that removes the listener; a watcher
   * must call it when its client goes away, or the listener leaks.
   */
  subscribe(service: string, listener: HealthListener): () => void {
    let set = this.#listeners.get(service);
    if (!set) {
      set = new Set();
      this.#listeners.set(service, set);
    }
    set.add(listener);
    return () => {
      const current = this.#listeners.get(service);
      if (!current?.delete(listener)) return;
      if (current.size === 0) this.#listeners.delete(service);
    };
  }

  /** How many listeners are registered, over all names; for leak checks. */
  get listenerCount(): number {
    let count = 0;
    for (const set of this.#listeners.values()) count += set.size;
    return count;
  }

  #update(service: string, status: ServingStatus): void {
    if (this.#statuses.get(service) === status) return;
    this.#statuses.set(service, status);
    // A copy, so a listener that unsubscribes while being called does not skip another.
    for (const listener of [...(this.#listeners.get(service) ?? [])]) listener(status);
  }
}
