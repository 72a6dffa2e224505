import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { setPriority } from "node:os";
import { EmergencyRequestedSchema } from "../gen/telemed/patient/events/v1/emergency_events_pb.js";
import { EmergencyKind, EmergencySeverity } from "../gen/telemed/patient/v1/emergency_pb.js";
import {
  CreateEmergencyRequestSchema,
  CreateEmergencyResponseSchema,
} from "../gen/telemed/patient/v1/emergency_service_pb.js";
import { childOptions, exitWhenParentStops, failChild, sendToParent } from "./child-ipc.ts";
import type { DelayControl } from "./notification-delay.ts";

/** What the emergency targets ask of this child. */
export interface EmergencyProbeOptions {
  readonly natsUrl: string;
  /**
   * The lane prefix: the stream is `{prefix}EMERGENCY`, its subjects `{prefix}.emergency.>`
   * (bench/emergency-targets.ts gives each target its own).
   */
  readonly prefix: string;
  /**
   * `raw`: this child creates the stream (as the lane does) and times its own publishes
   * to its own consumer. `service`: the service's lane made the stream; this child calls
   * CreateEmergency and times each answer to the dispatch message's arrival.
   */
  readonly mode: "raw" | "service";
  /** `127.0.0.1:PORT` of the service (mode `service`). */
  readonly address?: string;
  /** `Bearer …` of the caller (mode `service`). */
  readonly authorization?: string;
  /** `patients/{id}` the emergencies are raised for, in turn (mode `service`). */
  readonly parents?: readonly string[];
  /** Pause between one emergency's arrival and the next request, in ms. */
  readonly gapMs: number;
  /** How long to wait for an answer or a dispatch message before counting it failed. */
  readonly timeoutMs: number;
}

/** What the probe reports: the measured samples, in ms. */
export interface EmergencyProbeReport {
  /** Mode `service`: the CreateEmergency answer (the ack) to the dispatch message's arrival. Mode `raw`: publish call to arrival. */
  readonly delays: number[];
  /** Mode `service`: the CreateEmergency calls themselves. Mode `raw`: publish call to its PubAck. */
  readonly callMs: number[];
  /** Mode `service`: sending CreateEmergency to the dispatch message's arrival. */
  readonly totalMs: number[];
  readonly failed: number;
  readonly seconds: number;
  /** Mode `service`: the ids of every emergency answered (warm-up included), checked against the database. */
  readonly emergencyIds: string[];
  /** Dispatch messages that arrived twice at the probe's consumer. */
  readonly duplicates: number;
  /** Whether the probe ran at a raised priority (nice -10), so its timestamps wait less behind the drivers. */
  readonly raisedPriority: boolean;
  readonly problems: string[];
}

/** The consumer's name: the bench is one more reader of the dispatch subjects, apart from the Paramedic Service's. */
const probeDurable = "bench_paramedic_probe";
const createEmergencyPath = "/telemed.patient.v1.EmergencyService/CreateEmergency";

/**
 * Child process (on the load core): emergency latency on the lane. Opens a durable
 * pull consumer with explicit acks on the dispatch subjects, the way the Paramedic
 * Service reads them (JetStreamLane: `consume`, 32 messages per pull), then, one at a
 * time with `gapMs` between: in mode `raw`, publishes a dispatch-sized message with a
 * `Nats-Msg-Id` and times the call to its arrival; in mode `service`, calls
 * CreateEmergency (gRPC, grpc-js) and times its answer to the arrival of the dispatch
 * message naming that emergency. Emergencies begun after `measure` and before `finish`
 * count. Deletes the stream it made (mode `raw`) before reporting.
 */
async function main(): Promise<void> {
  exitWhenParentStops();
  const options = childOptions<EmergencyProbeOptions>();
  // The instrument shares the load core with the drivers: a higher priority keeps its own
  // wake-ups (the answer's and the message's arrival times) from waiting behind them.
  let raised = true;
  try {
    setPriority(-10);
  } catch {
    raised = false;
  }
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 5) problems.push(text);
  };
  const nc = await connect({ servers: options.natsUrl, name: "bench-emergency-probe", timeout: 5_000 });
  const js = jetstream(nc, { timeout: options.timeoutMs });
  const jsm = await jetstreamManager(nc);
  const stream = `${options.prefix}EMERGENCY`;
  const root = `${options.prefix}.emergency`;
  if (options.mode === "raw") {
    // The lane's stream (jetstream-lane.ts #createStream), one replica as here.
    await jsm.streams.add({
      name: stream,
      subjects: [`${root}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: 1,
      duplicate_window: nanos(3_600_000),
      max_age: nanos(86_400_000),
    });
  }
  await jsm.consumers.add(stream, {
    durable_name: probeDurable,
    filter_subject: `${root}.dispatch.>`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    ack_wait: nanos(30_000),
  });
  const consumer = await js.consumers.get(stream, probeDurable);
  const messages = await consumer.consume({ max_messages: 32 });

  // Arrivals by key (raw: the Nats-Msg-Id; service: the emergency's name), and who waits for one.
  const arrived = new Map<string, number>();
  const waiters = new Map<string, (at: number) => void>();
  let duplicates = 0;
  const keyOf = (msg: JsMsg): string | undefined => {
    if (options.mode === "raw") return msg.headers?.get("Nats-Msg-Id");
    if (!msg.subject.endsWith(".requested")) return undefined;
    return fromBinary(EmergencyRequestedSchema, msg.data).emergency;
  };
  void (async () => {
    for await (const msg of messages) {
      const at = performance.now();
      msg.ack();
      const key = keyOf(msg);
      if (key === undefined) continue;
      if (arrived.has(key)) {
        duplicates++;
        continue;
      }
      arrived.set(key, at);
      waiters.get(key)?.(at);
    }
  })().catch((error: unknown) => problem(`consumer: ${error instanceof Error ? error.message : String(error)}`));
  const arrival = (key: string): Promise<number | undefined> => {
    const at = arrived.get(key);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(key);
        resolve(undefined);
      }, options.timeoutMs);
      waiters.set(key, (when) => {
        clearTimeout(timer);
        waiters.delete(key);
        resolve(when);
      });
    });
  };

  const client = options.address ? new grpc.Client(options.address, grpc.credentials.createInsecure()) : undefined;
  const metadata = new grpc.Metadata();
  if (options.authorization !== undefined) metadata.set("authorization", options.authorization);
  const createEmergency = (request: Uint8Array) =>
    new Promise<Buffer>((resolve, reject) => {
      (client as grpc.Client).makeUnaryRequest(
        createEmergencyPath,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        Buffer.from(request),
        metadata.clone(),
        { deadline: Date.now() + options.timeoutMs },
        (error, response) => {
          if (error) reject(new Error(`CreateEmergency: ${grpc.status[error.code]} ${error.details}`));
          else resolve(response ?? Buffer.alloc(0));
        },
      );
    });

  let phase = "waiting" as "waiting" | "warm-up" | "measured" | "finished";
  let measureFrom = 0;
  let measureTo = 0;
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
  await sendToParent({ type: "ready", port: 0 });
  await started;

  const delays: number[] = [];
  const callMs: number[] = [];
  const totalMs: number[] = [];
  const emergencyIds: string[] = [];
  let failed = 0;
  const payload = new Uint8Array(160).fill(7);
  const parents = options.parents ?? [];
  for (let i = 0; phase !== "finished"; i++) {
    const counted = phase === "measured";
    const sentAt = performance.now();
    let key: string;
    try {
      if (options.mode === "raw") {
        key = `bench-${randomUUID()}`;
        await js.publish(`${root}.dispatch.p1.requested`, payload, { msgID: key, timeout: options.timeoutMs });
      } else {
        const request = create(CreateEmergencyRequestSchema, {
          parent: parents[i % parents.length] as string,
          requestId: randomUUID(),
          emergency: {
            kind: EmergencyKind.CARDIAC,
            severity: EmergencySeverity.CRITICAL,
            description: "Chest pain for 20 minutes",
            location: { latLng: { latitude: 12.9716, longitude: 77.5946 }, accuracyMeters: 15, landmark: "blue gate" },
            callbackPhone: "+919812345678",
          },
        });
        const answer = fromBinary(
          CreateEmergencyResponseSchema,
          await createEmergency(toBinary(CreateEmergencyRequestSchema, request)),
        );
        key = answer.emergency?.name ?? "";
        if (!key.startsWith(`${request.parent}/emergencies/`) || answer.merged) {
          throw new Error(`CreateEmergency answered ${key} (merged: ${answer.merged})`);
        }
        emergencyIds.push(key.slice(key.lastIndexOf("/") + 1));
      }
    } catch (error) {
      problem(error instanceof Error ? error.message : String(error));
      if (counted) failed++;
      await sleep(options.gapMs);
      continue;
    }
    const answeredAt = performance.now();
    const at = await arrival(key);
    if (at === undefined) {
      problem(`${key}: no dispatch message within ${options.timeoutMs} ms`);
      if (counted) failed++;
    } else if (counted) {
      delays.push(at - (options.mode === "raw" ? sentAt : answeredAt));
      callMs.push(answeredAt - sentAt);
      totalMs.push(at - sentAt);
    }
    await sleep(options.gapMs);
  }
  messages.stop();
  client?.close();
  if (options.mode === "raw") await jsm.streams.delete(stream).catch(() => false);
  else await jsm.consumers.delete(stream, probeDurable).catch(() => false);
  await nc.close();
  const report: EmergencyProbeReport = {
    delays,
    callMs,
    totalMs,
    failed,
    seconds: (measureTo - measureFrom) / 1000,
    emergencyIds,
    duplicates,
    raisedPriority: raised,
    problems,
  };
  await sendToParent({ type: "result", result: report });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

main().catch(failChild);
