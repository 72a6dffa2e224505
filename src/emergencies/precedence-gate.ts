/** How the gate behaves (EMERGENCY_PRECEDENCE_*). */
export interface PrecedenceSettings {
  /**
   * Routine calls that may run at once while emergency work is in progress; 0 turns
   * the gate off (routine calls are never held).
   */
  readonly routineCalls: number;
  /** How long the hold lasts after the last emergency work ended (the relay's round, the answer's write). */
  readonly graceMs: number;
}

/**
 * Emergencies before routine work inside one process (functional safety 3).
 *
 * The service answers every protocol on one Node event loop. Under a flood of routine
 * calls each turn of the loop runs the continuations of every call in flight, and an
 * emergency, which waits for a dozen database round trips, waits one such turn per
 * round trip: it would queue as long as the routine calls do. Its own connection pool,
 * NATS connection and consumers keep it off the routine queues outside the process;
 * this gate keeps it off the routine queue inside.
 *
 * While emergency work runs (an emergency RPC, a dispatch publish, a status event, and
 * `graceMs` after the last of them), routine calls start only while fewer than
 * `routineCalls` of those started during the hold run; the others wait, in order, and
 * start as places free up or when the hold ends. Calls already running finish. Outside
 * a hold a routine call pays one field read (`holding`): the wrapper calls the handler
 * directly. Routine work is never refused, only delayed, and never stops altogether (a
 * flood of emergencies still lets `routineCalls` run), so an abusive caller raising
 * emergencies can slow routine traffic but not stop it.
 *
 * Measured with the bench (`emergency-ack-to-paramedic-loaded`, README "Performance"): on
 * a quiet machine, under a flood of GetPatient and CreatePatient, it cut CreateEmergency's
 * p50 by about a quarter and the ack-to-paramedic p99 by about a third, at the cost of
 * about a third of the routine throughput while emergencies ran without pause. When other
 * work squeezed the server core it showed no gain (held calls also start in a burst when a
 * hold ends; releasing them a few per loop turn is the next thing to try).
 */
export class PrecedenceGate {
  readonly #settings: PrecedenceSettings;
  readonly #waiting: Array<() => void> = [];
  #emergencyWork = 0;
  #holding = false;
  /** Routine calls started through `routine` (during a hold) that have not finished. */
  #routineRunning = 0;
  #releaseTimer: NodeJS.Timeout | undefined;
  #held = 0;

  constructor(settings: PrecedenceSettings) {
    this.#settings = settings;
  }

  /** Routine calls that had to wait so far (for metrics and tests). */
  get heldCalls(): number {
    return this.#held;
  }

  /**
   * True while emergency work (or its grace) is in progress: routine calls should
   * then go through `routine`. A field read, so the hot path pays nothing else.
   */
  get holding(): boolean {
    return this.#holding;
  }

  /** Runs emergency work; routine calls are held while it runs and for `graceMs` after. */
  async emergency<T>(work: () => Promise<T>): Promise<T> {
    if (this.#settings.routineCalls === 0) return work();
    this.#emergencyWork += 1;
    this.#holding = true;
    if (this.#releaseTimer !== undefined) clearTimeout(this.#releaseTimer);
    this.#releaseTimer = undefined;
    try {
      return await work();
    } finally {
      this.#emergencyWork -= 1;
      if (this.#emergencyWork === 0) {
        this.#releaseTimer = setTimeout(() => {
          this.#releaseTimer = undefined;
          this.#holding = false;
          this.#admit();
        }, this.#settings.graceMs);
      }
    }
  }

  /**
   * Runs a routine call during a hold: at once while fewer than `routineCalls` such calls
   * run, else when one of them finishes or the hold ends. Outside a hold it runs at once.
   */
  routine<T>(work: () => Promise<T>): Promise<T> {
    if (!this.#holding || this.#routineRunning < this.#settings.routineCalls) {
      this.#routineRunning += 1;
      return this.#run(work);
    }
    this.#held += 1;
    return new Promise<void>((resolve) => this.#waiting.push(resolve)).then(() => this.#run(work));
  }

  /** Runs a call already counted in `#routineRunning`. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      this.#routineRunning -= 1;
      this.#admit();
    }
  }

  /** Starts waiting routine calls: all of them once the hold is over, else up to the limit. */
  #admit(): void {
    while (this.#waiting.length > 0 && (!this.#holding || this.#routineRunning < this.#settings.routineCalls)) {
      this.#routineRunning += 1;
      (this.#waiting.shift() as () => void)();
    }
  }
}
