import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Consultation_State } from "../gen/telemed/patient/v1/consultation_pb.js";
import {
  CancelConsultationRequestSchema,
  CancelConsultationResponseSchema,
  CreateConsultationRequestSchema,
  CreateConsultationResponseSchema,
} from "../gen/telemed/patient/v1/consultation_service_pb.js";
import {
  WatchNotificationsRequestSchema,
  WatchNotificationsResponseSchema,
} from "../gen/telemed/patient/v1/notification_service_pb.js";
import { type BookingSource, bookConsultationRequest } from "./book-consultation-frames.ts";
import { childOptions, exitWhenParentStops, failChild, sendToParent } from "./child-ipc.ts";
import { SlotSequence } from "./consultation-slots.ts";

/** What the notification-delay targets ask of this child. */
export interface NotificationDelayOptions {
  /** `127.0.0.1:PORT` of the replica the changes are sent to. */
  readonly changeAddress: string;
  /** The streams to watch on, each `127.0.0.1:PORT` with a label for the report. */
  readonly watches: ReadonlyArray<{ readonly label: string; readonly address: string }>;
  /** `Bearer …` of the caller of every call (the run's admin). */
  readonly authorization: string;
  /** The bookings: `parents` holds the one watched patient; change pair `i` books slot `i`. */
  readonly booking: BookingSource;
  /** How long to wait for a change's notification on a stream before counting it lost. */
  readonly timeoutMs: number;
}

/** Parent to child, besides `stop`: start changing (warm-up), start counting, finish. */
export type DelayControl = { readonly type: "go" } | { readonly type: "measure" } | { readonly type: "finish" };

/** What the child reports: the delays of the measured changes, per watched stream, in ms. */
export interface NotificationDelayReport {
  readonly changes: number;
  readonly failed: number;
  readonly seconds: number;
  /** Label -> delay from sending each measured change to its notification's arrival on that stream. */
  readonly delays: Record<string, number[]>;
  /** Per kind (`booked`, `cancelled`), the delays on the last watched stream. */
  readonly byKind: Record<string, number[]>;
  /** How long the change calls themselves took (send to response). */
  readonly callMs: number[];
  /** On the last watched stream: arrival minus the change's answer (negative when the notification came first). */
  readonly afterAnswerMs: number[];
  /** Stored-and-delivered bookings, all cancelled again by the end. */
  readonly bookings: number;
  /** The first few problems, for the report. */
  readonly problems: string[];
}

const createPath = "/telemed.patient.v1.ConsultationService/CreateConsultation";
const cancelPath = "/telemed.patient.v1.ConsultationService/CancelConsultation";
const watchPath = "/telemed.patient.v1.NotificationService/WatchNotifications";

/**
 * Child process (on the load core): the delay from a consultation status change to
 * its notification on watching streams. Opens WatchNotifications (gRPC, grpc-js) on
 * each replica for one patient and waits for `caught_up`; on `go`, books a slot and
 * cancels it again, one change at a time, and times each change from sending the
 * call to the arrival of its notification (matched by subject resource and title) on
 * every stream. Changes begun after `measure` and before `finish` count.
 */
async function main(): Promise<void> {
  exitWhenParentStops();
  const options = childOptions<NotificationDelayOptions>();
  const parent = options.booking.parents[0] as string;
  const metadata = new grpc.Metadata();
  metadata.set("authorization", options.authorization);
  const raw = (bytes: Buffer) => bytes;
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 5) problems.push(text);
  };

  const streams = options.watches.map((watch) => openWatch(watch.label, watch.address, parent, metadata, problem));
  await Promise.all(streams.map((stream) => stream.caughtUp));

  const client = new grpc.Client(options.changeAddress, grpc.credentials.createInsecure());
  const unary = (path: string, request: Uint8Array) =>
    new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        raw,
        raw,
        Buffer.from(request),
        metadata.clone(),
        { deadline: Date.now() + 30_000 },
        (error, response) => {
          if (error) reject(new Error(`${path}: ${grpc.status[error.code]} ${error.details}`));
          else resolve(response ?? Buffer.alloc(0));
        },
      );
    });

  // Set by the parent's messages; read through a cast so TypeScript does not narrow it to "waiting".
  let phase = "waiting" as "waiting" | "warm-up" | "measured" | "finished";
  const started = new Promise<void>((resolve) => {
    process.on("message", (message: DelayControl) => {
      if (message.type === "go" && phase === "waiting") {
        phase = "warm-up";
        resolve();
      } else if (message.type === "measure" && phase === "warm-up") {
        phase = "measured";
        measureFrom = performance.now();
      } else if (message.type === "finish") {
        if (phase === "warm-up") measureFrom = performance.now();
        phase = "finished";
        measureTo = performance.now();
      }
    });
  });
  let measureFrom = 0;
  let measureTo = 0;
  await sendToParent({ type: "ready", port: 0 });
  await started;

  const slots = new SlotSequence(options.booking.range);
  const delays: Record<string, number[]> = Object.fromEntries(options.watches.map((watch) => [watch.label, []]));
  const byKind: Record<string, number[]> = { booked: [], cancelled: [] };
  const callMs: number[] = [];
  const afterAnswerMs: number[] = [];
  let changes = 0;
  let failed = 0;
  let bookings = 0;

  /** Sends one change and waits for its notification on every stream; false when anything failed. */
  const timed = async (
    kind: "booked" | "cancelled",
    send: () => Promise<string>,
    counted: boolean,
  ): Promise<string | undefined> => {
    const sentAt = performance.now();
    let subject: string;
    try {
      subject = await send();
    } catch (error) {
      problem(`${kind}: ${error instanceof Error ? error.message : String(error)}`);
      if (counted) failed++;
      return undefined;
    }
    const answeredAt = performance.now();
    const title = kind === "booked" ? "Consultation booked" : "Consultation cancelled";
    const arrivals = await Promise.all(
      streams.map((stream) => stream.arrival(`${subject}\n${title}`, options.timeoutMs)),
    );
    const lost = arrivals.indexOf(undefined);
    if (lost >= 0) {
      problem(
        `${kind} ${subject}: no notification on the ${streams[lost]?.label} stream within ${options.timeoutMs} ms`,
      );
      if (counted) failed++;
      return undefined;
    }
    if (counted) {
      changes++;
      callMs.push(answeredAt - sentAt);
      arrivals.forEach((at, i) => {
        delays[streams[i]?.label as string]?.push((at as number) - sentAt);
      });
      byKind[kind]?.push((arrivals[arrivals.length - 1] as number) - sentAt);
      afterAnswerMs.push((arrivals[arrivals.length - 1] as number) - answeredAt);
    }
    return subject;
  };

  for (let i = 0; phase !== "finished"; i++) {
    const counted = phase === "measured";
    const request = bookConsultationRequest(options.booking, slots, i);
    let etag = "";
    const name = await timed(
      "booked",
      async () => {
        const answer = fromBinary(
          CreateConsultationResponseSchema,
          await unary(createPath, toBinary(CreateConsultationRequestSchema, request)),
        );
        const consultation = answer.consultation;
        if (consultation?.state !== Consultation_State.SCHEDULED || consultation.slot !== request.consultation?.slot) {
          throw new Error(`booking answered ${Consultation_State[consultation?.state ?? 0]} for ${consultation?.slot}`);
        }
        etag = consultation.etag;
        return consultation.name;
      },
      counted,
    );
    if (name === undefined) continue;
    bookings++;
    const stillCounted = counted && phase === "measured";
    await timed(
      "cancelled",
      async () => {
        const answer = fromBinary(
          CancelConsultationResponseSchema,
          await unary(
            cancelPath,
            toBinary(CancelConsultationRequestSchema, create(CancelConsultationRequestSchema, { name, etag })),
          ),
        );
        if (answer.consultation?.state !== Consultation_State.CANCELLED) {
          throw new Error(`cancel answered ${Consultation_State[answer.consultation?.state ?? 0]}`);
        }
        return name;
      },
      stillCounted,
    );
  }
  for (const stream of streams) {
    if (stream.duplicates() > 0) {
      failed += stream.duplicates();
      problem(`${stream.duplicates()} notifications arrived twice on the ${stream.label} stream`);
    }
    const ended = stream.ended();
    if (ended !== undefined) {
      failed++;
      problem(`the ${stream.label} stream ended: ${ended}`);
    }
    stream.close();
  }
  client.close();
  const report: NotificationDelayReport = {
    changes,
    failed,
    seconds: (measureTo - measureFrom) / 1000,
    delays,
    byKind,
    callMs,
    afterAnswerMs,
    bookings,
    problems,
  };
  await sendToParent({ type: "result", result: report });
}

/** One WatchNotifications stream: when it caught up, and when each notification arrived. */
function openWatch(
  label: string,
  address: string,
  parent: string,
  metadata: grpc.Metadata,
  problem: (text: string) => void,
) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const request = toBinary(WatchNotificationsRequestSchema, create(WatchNotificationsRequestSchema, { parent }));
  const call = client.makeServerStreamRequest(
    watchPath,
    (bytes: Buffer) => bytes,
    (bytes: Buffer) => bytes,
    Buffer.from(request),
    metadata.clone(),
  );
  const arrived = new Map<string, number>();
  const waiters = new Map<string, (at: number) => void>();
  let duplicates = 0;
  let ended: string | undefined;
  let caughtUp: () => void = () => undefined;
  let failOpen: (error: Error) => void = () => undefined;
  const caught = new Promise<void>((resolve, reject) => {
    caughtUp = resolve;
    failOpen = reject;
  });
  call.on("data", (bytes: Buffer) => {
    const at = performance.now();
    const { event } = fromBinary(WatchNotificationsResponseSchema, bytes);
    if (event.case === "caughtUp") caughtUp();
    if (event.case !== "notification") return;
    const key = `${event.value.subjectResource}\n${event.value.title}`;
    if (arrived.has(key)) {
      duplicates++;
      return;
    }
    arrived.set(key, at);
    waiters.get(key)?.(at);
  });
  call.on("error", (error: grpc.ServiceError) => {
    if (error.code === grpc.status.CANCELLED) return;
    ended = `${grpc.status[error.code]} ${error.details}`;
    problem(`${label} stream: ${ended}`);
    failOpen(new Error(`WatchNotifications on ${address}: ${ended}`));
  });
  call.on("end", () => {
    ended ??= "the server ended it";
  });
  return {
    label,
    caughtUp: caught,
    /** When the notification with this key arrived; undefined if it did not within `timeoutMs`. */
    arrival(key: string, timeoutMs: number): Promise<number | undefined> {
      const at = arrived.get(key);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(key);
          resolve(undefined);
        }, timeoutMs);
        waiters.set(key, (when) => {
          clearTimeout(timer);
          waiters.delete(key);
          resolve(when);
        });
      });
    },
    duplicates: () => duplicates,
    ended: () => ended,
    close() {
      call.cancel();
      client.close();
    },
  };
}

main().catch(failChild);
