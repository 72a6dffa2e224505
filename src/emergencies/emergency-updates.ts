import type { MessageBus, Unsubscribe } from "../messaging/message-bus.ts";

/**
 * Live fan-out of emergency changes to WatchEmergency streams on every replica. A
 * change is announced after its commit: streams on this replica wake at once, other
 * replicas through a core-NATS hint on `{prefix.}patient.emergency.updated.{id}` (the
 * opaque emergency id only). A lost hint delays an update until the stream's periodic
 * read; it never loses one, because streams read the timeline from the database.
 */
export class EmergencyUpdates {
  readonly #bus: MessageBus;
  readonly #subjectPrefix: string;
  readonly #watchers = new Map<string, { wakes: Set<() => void>; unsubscribe: Unsubscribe }>();

  constructor(bus: MessageBus, lanePrefix: string) {
    this.#bus = bus;
    this.#subjectPrefix = `${lanePrefix === "" ? "" : `${lanePrefix}.`}patient.emergency.updated.`;
  }

  /** Tells every replica's streams of `emergencyId` to read again. */
  announce(emergencyId: string): void {
    this.#wake(emergencyId);
    this.#bus.publish(this.#subjectPrefix + emergencyId, new Uint8Array());
  }

  /** Calls `wake` whenever `emergencyId` may have changed; returns the unwatch function. */
  watch(emergencyId: string, wake: () => void): () => void {
    let entry = this.#watchers.get(emergencyId);
    if (entry === undefined) {
      const unsubscribe = this.#bus.subscribe(this.#subjectPrefix + emergencyId, () => this.#wake(emergencyId));
      entry = { wakes: new Set(), unsubscribe };
      this.#watchers.set(emergencyId, entry);
    }
    const own = () => wake();
    entry.wakes.add(own);
    return () => {
      const current = this.#watchers.get(emergencyId);
      if (current === undefined) return;
      current.wakes.delete(own);
      if (current.wakes.size === 0) {
        current.unsubscribe();
        this.#watchers.delete(emergencyId);
      }
    };
  }

  /** Stops every subscription (the streams end with the server). */
  stop(): void {
    for (const entry of this.#watchers.values()) entry.unsubscribe();
    this.#watchers.clear();
  }

  #wake(emergencyId: string): void {
    for (const wake of this.#watchers.get(emergencyId)?.wakes ?? []) wake();
  }
}
