import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { WatchNotificationsResponse } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchNotificationsResponseSchema } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import type { Clock } from "../shared/clock.ts";
import type { CategoryName } from "./notification.ts";
import { decodeCursor, encodeCursor, invalidCursor } from "./notification-cursor.ts";
import type { NotificationFanout } from "./notification-fanout.ts";
import { notificationToProto } from "./notification-mapping.ts";
import type { NotificationStore } from "./notification-store.ts";

type Event = MessageInitShape<typeof WatchNotificationsResponseSchema> | WatchNotificationsResponse;

/** What a stream needs. */
export interface WatchDeps {
  readonly store: NotificationStore;
  readonly fanout: NotificationFanout;
  readonly clock: Clock;
  readonly heartbeatIntervalMs: number;
  readonly catchUpIntervalMs: number;
}

/** One WatchNotifications call. */
export interface WatchRequest {
  readonly recipientId: string;
  readonly cursor: string;
  readonly categories: readonly CategoryName[];
  /** Ends with the call (client gone, server shutting down). */
  readonly signal: AbortSignal;
  /** Throws (UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND) when the caller may no longer watch. */
  readonly recheckAccess: () => Promise<void>;
}

const pageSize = 100;

/**
 * A patient's notification stream: what was missed after the cursor (from the
 * store), `caught_up`, then live notifications as they commit, with heartbeats.
 *
 * Why nothing is skipped: the stream registers for pokes before its first read, and
 * every read is "sequence > the last one sent" from the store, where one recipient's
 * sequences commit in order (notification-store.ts). A poke that arrives during a
 * read marks the stream dirty, so it reads again; a poke that never arrives is
 * covered by the periodic catch-up read. Access is checked again at every heartbeat
 * (a revoked session or link ends the stream), and the token's own expiry ends it too.
 */
export async function* watchNotifications(deps: WatchDeps, request: WatchRequest): AsyncGenerator<Event> {
  let dirty = false;
  let wakeUp: (() => void) | undefined;
  const unwatch = deps.fanout.watch(request.recipientId, () => {
    dirty = true;
    wakeUp?.();
  });
  try {
    const head = await deps.store.headSequence(request.recipientId);
    const resumeFrom = decodeCursor(request.cursor);
    // A cursor beyond what was ever stored is another stream's: accepting it would skip notifications.
    if (resumeFrom !== undefined && resumeFrom > head) throw invalidCursor();
    let cursor = resumeFrom ?? head;
    const wanted = new Set(request.categories);
    const readNew = async function* (): AsyncGenerator<Event, void> {
      for (;;) {
        const batch = await deps.store.after(request.recipientId, cursor, pageSize);
        for (const notification of batch) {
          cursor = notification.sequence;
          if (wanted.size === 0 || wanted.has(notification.category)) {
            yield { event: { case: "notification", value: notificationToProto(notification) } };
          }
        }
        if (batch.length < pageSize) return;
      }
    };

    yield* readNew();
    yield { event: { case: "caughtUp", value: { cursor: encodeCursor(cursor) } } };

    let nextHeartbeat = Date.now() + deps.heartbeatIntervalMs;
    let nextCatchUp = Date.now() + deps.catchUpIntervalMs;
    while (!request.signal.aborted) {
      if (!dirty) {
        const waitMs = Math.max(0, Math.min(nextHeartbeat, nextCatchUp) - Date.now());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, waitMs);
          request.signal.addEventListener("abort", done, { once: true });
          wakeUp = done;
          function done() {
            clearTimeout(timer);
            request.signal.removeEventListener("abort", done);
            wakeUp = undefined;
            resolve();
          }
        });
      }
      if (request.signal.aborted) return;
      if (dirty || Date.now() >= nextCatchUp) {
        // Cleared before reading: a poke during the read makes the loop read again.
        dirty = false;
        nextCatchUp = Date.now() + deps.catchUpIntervalMs;
        yield* readNew();
      }
      if (Date.now() >= nextHeartbeat) {
        await request.recheckAccess();
        nextHeartbeat = Date.now() + deps.heartbeatIntervalMs;
        yield {
          event: {
            case: "heartbeat",
            value: { sendTime: timestampFromDate(deps.clock.now()), cursor: encodeCursor(cursor) },
          },
        };
      }
    }
  } finally {
    unwatch();
  }
}
