import type { EntityManager } from "@mikro-orm/postgresql";
import type { EmergencyView } from "../emergency-record.ts";
import type { EmergencySql } from "../emergency-store.ts";

/** What a request id was answered with. */
export interface RecentAnswer {
  readonly view: EmergencyView;
  readonly merged: boolean;
}

/**
 * The answers to recent CreateEmergency request ids, in memory, so a retry that
 * arrives while PostgreSQL is down gets the emergency its first attempt committed
 * rather than a second one from the journal: the first attempt committed, its answer
 * was lost (a cut connection, this process killed), the retry came during an outage.
 * Filled on every commit and, at start, from the database (the answers an earlier
 * process gave). Bounded by age and count; the oldest go first.
 */
export class RecentRequests {
  readonly #answers = new Map<string, { answer: RecentAnswer; at: number }>();
  readonly #windowMs: number;
  readonly #max: number;

  constructor(settings: { windowMs: number; max: number }) {
    this.#windowMs = settings.windowMs;
    this.#max = settings.max;
  }

  remember(patientId: string, requestId: string, answer: RecentAnswer, at = Date.now()): void {
    const key = `${patientId}|${requestId}`;
    this.#answers.delete(key); // re-inserted last: the Map's order is oldest first
    this.#answers.set(key, { answer, at });
    for (const [oldest, entry] of this.#answers) {
      if (this.#answers.size <= this.#max && Date.now() - entry.at < this.#windowMs) break;
      this.#answers.delete(oldest);
    }
  }

  get(patientId: string, requestId: string): RecentAnswer | undefined {
    const entry = this.#answers.get(`${patientId}|${requestId}`);
    return entry === undefined || Date.now() - entry.at >= this.#windowMs ? undefined : entry.answer;
  }

  /** Loads the request ids of the last window from the database; how many. */
  async load(em: EntityManager, sql: EmergencySql): Promise<number> {
    const since = new Date(Date.now() - this.#windowMs);
    const requests = (await sql.recentRequests(em, since, this.#max)).reverse();
    for (let start = 0; start < requests.length; start += 500) {
      const chunk = requests.slice(start, start + 500);
      const ids = [...new Set(chunk.map((request) => request.emergencyId))];
      const records = new Map((await sql.getMany(em, ids)).map((record) => [record.id, record]));
      const timelines = await sql.timeline(em, ids);
      for (const request of chunk) {
        const emergency = records.get(request.emergencyId);
        if (emergency === undefined) continue;
        const view = { emergency, timeline: timelines.get(emergency.id) ?? [] };
        this.remember(request.patientId, request.requestId, { view, merged: request.merged });
      }
    }
    return requests.length;
  }
}
