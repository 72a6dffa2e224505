import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import {
  type Notification,
  NotificationCategory,
  NotificationPriority,
} from "../../gen/telemed/patient/v1/notification_pb.js";
import {
  NotificationService,
  type WatchNotificationsResponse,
} from "../../gen/telemed/patient/v1/notification_service_pb.js";
import type { NotificationDraft } from "../../src/notifications/notifier.ts";
import type { TestApp } from "../support/test-app.ts";

/** The three protocols a browser or a service may watch with. */
export type Protocol = "connect" | "grpc" | "grpc-web";
export const protocols: Protocol[] = ["connect", "grpc", "grpc-web"];

/** A NotificationService client over one protocol, authenticated by `interceptor`. */
export function notificationClient(
  t: TestApp,
  interceptor: Interceptor,
  protocol: Protocol = "connect",
): Client<typeof NotificationService> {
  const options = { baseUrl: t.baseUrl, interceptors: [interceptor] };
  const transport =
    protocol === "grpc"
      ? createGrpcTransport(options)
      : protocol === "grpc-web"
        ? createGrpcWebTransport({ ...options, httpVersion: "1.1" })
        : createConnectTransport({ ...options, httpVersion: "1.1" });
  return createClient(NotificationService, transport);
}

/** A consultation reminder for `patientId` with a unique title (what a producer would send). */
export function draftFor(patientId: string, overrides: Partial<NotificationDraft> = {}): NotificationDraft {
  return {
    recipientPatientId: patientId,
    category: NotificationCategory.CONSULTATIONS,
    priority: NotificationPriority.NORMAL,
    title: `Consultation reminder ${randomUUID().slice(0, 8)}`,
    body: "Your consultation starts soon.",
    subjectResource: `patients/${patientId}/consultations/${randomUUID()}`,
    ...overrides,
  };
}

/** Reads a server stream event by event, with timeouts, and can be cancelled like a client going away. */
export class StreamReader {
  readonly #iterator: AsyncIterator<WatchNotificationsResponse>;
  readonly #abort: AbortController;

  constructor(
    client: Client<typeof NotificationService>,
    request: { parent: string; cursor?: string; categories?: NotificationCategory[] },
  ) {
    this.#abort = new AbortController();
    this.#iterator = client.watchNotifications(request, { signal: this.#abort.signal })[Symbol.asyncIterator]();
  }

  /** The next event; rejects when none comes within `timeoutMs` or the stream fails. */
  async next(timeoutMs = 5000): Promise<WatchNotificationsResponse> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no stream event within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([this.#iterator.next(), timeout]);
      if (result.done) throw new Error("the stream ended");
      return result.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next event that is not a heartbeat. */
  async nextEvent(timeoutMs = 5000): Promise<WatchNotificationsResponse> {
    for (;;) {
      const event = await this.next(timeoutMs);
      if (event.event.case !== "heartbeat") return event;
    }
  }

  /** Titles of the next `count` notifications (skipping heartbeats; a caught_up in between fails). */
  async titles(count: number, timeoutMs = 5000): Promise<string[]> {
    const titles: string[] = [];
    while (titles.length < count) {
      const event = await this.nextEvent(timeoutMs);
      if (event.event.case !== "notification") throw new Error(`expected a notification, got ${event.event.case}`);
      titles.push(event.event.value.title);
    }
    return titles;
  }

  /** The next `count` notifications, skipping heartbeats and caught_up markers. */
  async notifications(count: number, timeoutMs = 5000): Promise<Notification[]> {
    const found: Notification[] = [];
    while (found.length < count) {
      const event = await this.nextEvent(timeoutMs);
      if (event.event.case === "notification") found.push(event.event.value);
    }
    return found;
  }

  /** Reads until caught_up; the titles replayed before it and its cursor. */
  async untilCaughtUp(timeoutMs = 5000): Promise<{ titles: string[]; cursor: string }> {
    const titles: string[] = [];
    for (;;) {
      const event = await this.nextEvent(timeoutMs);
      if (event.event.case === "caughtUp") return { titles, cursor: event.event.value.cursor };
      if (event.event.case === "notification") titles.push(event.event.value.title);
    }
  }

  /** Drops the connection, as a client going offline does. */
  close(): void {
    this.#abort.abort();
  }
}

/** Polls `probe` until it returns a value that is not undefined. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
