import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { WatchNotificationsResponse } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchNotificationsResponseSchema } from "../../gen/telemed/patient/v1/notification_service_pb.js";
import type { Clock } from "../shared/clock.ts";
import { liveLoop, StreamWakeups } from "../shared/live-stream-loop.ts";
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
  const wakeups = new StreamWakeups();
  const unwatch = deps.fanout.watch(request.recipientId, wakeups.poke);
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

    yield* liveLoop<Event>({
      wakeups,
      signal: request.signal,
      heartbeatIntervalMs: deps.heartbeatIntervalMs,
      catchUpIntervalMs: deps.catchUpIntervalMs,
      catchUp: async function* () {
        yield* readNew();
        return false;
      },
      heartbeat: async () => {
        await request.recheckAccess();
        return {
          event: {
            case: "heartbeat",
            value: { sendTime: timestampFromDate(deps.clock.now()), cursor: encodeCursor(cursor) },
          },
        };
      },
    });
  } finally {
    unwatch();
  }
}
