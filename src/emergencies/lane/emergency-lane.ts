import type { Priority } from "../emergency.ts";

/**
 * The emergency lane between the Patient Service and the Paramedic Service: durable,
 * acknowledged messages on priority-tagged subjects. JetStream in production
 * (jetstream-lane.ts); an in-process stand-in behind the same interface in the
 * embedded default (in-process-lane.ts), so the whole lane runs without NATS.
 */

/** What a message is: a dispatch request, its cancellation, or a status event back. */
export type LaneTopic = "requested" | "cancelled" | "status";

/** What a consumer reads: the Paramedic Service reads dispatch, the Patient Service status. */
export type LaneGroup = "dispatch" | "status";

export const priorities: readonly Priority[] = [1, 2, 3];

/** The group a topic belongs to. */
export function groupOf(topic: LaneTopic): LaneGroup {
  return topic === "status" ? "status" : "dispatch";
}

/** One message handed to a consumer's handler. */
export interface LaneDelivery {
  readonly topic: LaneTopic;
  readonly priority: Priority;
  /** The publisher's message id (`Nats-Msg-Id`): `{emergency id}`, `{emergency id}.cancel`, `{emergency id}.{sequence}`. */
  readonly msgId: string;
  readonly data: Uint8Array;
  /** 1 on the first delivery, more on redeliveries. */
  readonly deliveryCount: number;
}

/** Handles one delivery; resolving acknowledges it, rejecting has it delivered again later. */
export type LaneHandler = (delivery: LaneDelivery) => Promise<void>;

/** How a consumer runs. */
export interface ConsumeOptions {
  /** Durable consumer name (before the lane prefix); replicas with the same name share the work. */
  readonly durable: string;
  readonly group: LaneGroup;
  readonly handler: LaneHandler;
  /** Deliveries handled at once (never two of one emergency at a time). */
  readonly workers: number;
  /** Pause before a failed delivery is delivered again, by delivery count. */
  readonly retryDelayMs: (deliveryCount: number) => number;
}

/** A running consumer. */
export interface LaneConsumer {
  /** Stops taking deliveries and waits for the ones being handled. */
  stop(): Promise<void>;
}

/** The lane, as both services use it. */
export interface EmergencyLane {
  readonly kind: "jetstream" | "in-process";
  /**
   * Stores a message on the lane; resolves once it is durable there (the PubAck), and
   * rejects when it is not (the caller retries with the same `msgId`, which the lane
   * deduplicates).
   */
  publish(topic: LaneTopic, priority: Priority, msgId: string, data: Uint8Array): Promise<void>;
  /** Starts a durable consumer that hands out P1 before P2 before P3. */
  consume(options: ConsumeOptions): Promise<LaneConsumer>;
  /** Stops consumers and closes what the lane opened. */
  close(): Promise<void>;
}

/** The emergency a message is about: its id is the first part of every message id. */
export function keyOfMsgId(msgId: string): string {
  const dot = msgId.indexOf(".");
  return dot === -1 ? msgId : msgId.slice(0, dot);
}

/**
 * Names on the NATS server. Subjects carry the priority and the kind only: no patient,
 * no emergency id, no health data.
 *
 * | subject                                   | publisher          |
 * |-------------------------------------------|--------------------|
 * | `{p.}emergency.dispatch.p{1-3}.requested` | Patient outbox     |
 * | `{p.}emergency.dispatch.p{1-3}.cancelled` | Patient outbox     |
 * | `{p.}emergency.status.p{1-3}`             | Paramedic Service  |
 *
 * A request and its cancellation share one subject filter, so they reach the
 * Paramedic Service in the order they were published.
 */
export class LaneNames {
  readonly #prefix: string;

  /** `prefix`: EMERGENCY_LANE_PREFIX, empty in production. */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  get stream(): string {
    return `${this.#prefix}EMERGENCY`;
  }

  /** Every subject of the stream. */
  get streamSubjects(): string[] {
    return [`${this.#subjectPrefix()}emergency.>`];
  }

  subject(topic: LaneTopic, priority: Priority): string {
    const root = `${this.#subjectPrefix()}emergency`;
    return topic === "status" ? `${root}.status.p${priority}` : `${root}.dispatch.p${priority}.${topic}`;
  }

  /** The filter of a group's consumer for one priority. */
  filter(group: LaneGroup, priority: Priority): string {
    const root = `${this.#subjectPrefix()}emergency`;
    return group === "status" ? `${root}.status.p${priority}` : `${root}.dispatch.p${priority}.*`;
  }

  /** The durable consumer of one priority. */
  durable(name: string, priority: Priority): string {
    return `${this.#prefix}${name}_p${priority}`;
  }

  /** Topic and priority of a subject of this lane; undefined for anything else. */
  parse(subject: string): { topic: LaneTopic; priority: Priority } | undefined {
    const root = `${this.#subjectPrefix()}emergency.`;
    if (!subject.startsWith(root)) return undefined;
    const match = /^(?:status\.p([123])|dispatch\.p([123])\.(requested|cancelled))$/.exec(subject.slice(root.length));
    if (match === null) return undefined;
    if (match[1] !== undefined) return { topic: "status", priority: Number(match[1]) as Priority };
    return { topic: match[3] as LaneTopic, priority: Number(match[2]) as Priority };
  }

  #subjectPrefix(): string {
    return this.#prefix === "" ? "" : `${this.#prefix}.`;
  }
}
