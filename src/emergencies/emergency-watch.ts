import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { WatchEmergencyResponseSchema } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import type { Clock } from "../shared/clock.ts";
import { notFound } from "../shared/domain-errors.ts";
import { liveLoop, StreamWakeups } from "../shared/live-stream-loop.ts";
import { isEnded } from "./emergency.ts";
import { emergencyToProto, timelineEntryToProto } from "./emergency-mapping.ts";
import type { EmergencyView } from "./emergency-record.ts";
import type { EmergencyUpdates } from "./emergency-updates.ts";

type Event = MessageInitShape<typeof WatchEmergencyResponseSchema>;

/** What a stream needs. */
export interface EmergencyWatchDeps {
  readonly read: (emergencyId: string) => Promise<EmergencyView | undefined>;
  readonly updates: EmergencyUpdates;
  readonly clock: Clock;
  readonly heartbeatIntervalMs: number;
  readonly catchUpIntervalMs: number;
}

/** One WatchEmergency call. */
export interface EmergencyWatchRequest {
  readonly patientId: string;
  readonly emergencyId: string;
  /** Last timeline position the client has seen; 0: none (the snapshot has everything). */
  readonly afterSequence: number;
  readonly signal: AbortSignal;
  /** Throws when the caller may no longer watch (revoked session, ended link). */
  readonly recheckAccess: () => Promise<void>;
}

/**
 * TST-PT005-2: the emergency now, then one update per timeline entry as it commits,
 * heartbeats while idle, and the end after CLOSED or CANCELLED. The stream registers
 * for wake-ups before its first read and always reads the timeline from the database
 * (position > the last one sent), so an update committed while it starts, or a lost
 * hint, is sent late at worst, never skipped.
 */
export async function* watchEmergency(deps: EmergencyWatchDeps, request: EmergencyWatchRequest): AsyncGenerator<Event> {
  const wakeups = new StreamWakeups();
  const unwatch = deps.updates.watch(request.emergencyId, wakeups.poke);
  try {
    const first = await deps.read(request.emergencyId);
    if (first === undefined || first.emergency.patientId !== request.patientId) throw notFound("Emergency");
    yield { event: { case: "snapshot", value: emergencyToProto(first) } };
    let cursor = request.afterSequence > 0 ? request.afterSequence : first.emergency.timelineLength;
    const sendNew = function* (view: EmergencyView): Generator<Event, boolean> {
      const emergency = emergencyToProto(view);
      for (const entry of view.timeline) {
        if (entry.position <= cursor) continue;
        cursor = entry.position;
        yield { event: { case: "update", value: { statusEvent: timelineEntryToProto(entry), emergency } } };
      }
      return isEnded(view.emergency.state) && cursor >= view.emergency.timelineLength;
    };
    if (yield* sendNew(first)) return;

    yield* liveLoop<Event>({
      wakeups,
      signal: request.signal,
      heartbeatIntervalMs: deps.heartbeatIntervalMs,
      catchUpIntervalMs: deps.catchUpIntervalMs,
      catchUp: async function* () {
        const view = await deps.read(request.emergencyId);
        if (view === undefined) throw notFound("Emergency");
        return yield* sendNew(view);
      },
      heartbeat: async () => {
        await request.recheckAccess();
        return {
          event: {
            case: "heartbeat",
            value: { sendTime: timestampFromDate(deps.clock.now()), cursor: String(cursor) },
          },
        };
      },
    });
  } finally {
    unwatch();
  }
}
