import { randomUUID } from "node:crypto";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type Client, type Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ConsultationMode, type Slot } from "../../gen/telemed/patient/v1/consultation_pb.js";
import { ConsultationService } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import type { Clock } from "../../src/shared/clock.ts";
import type { TestSession } from "../support/auth-fixtures.ts";
import type { TestApp } from "../support/test-app.ts";

/**
 * The machine's time plus an offset tests move. Accounts and sessions must be made
 * before moving it (log-in checks TOTP codes and token times against real time), so
 * tests sign their callers up first, then travel, and `reset()` afterwards.
 */
export class ShiftedClock implements Clock {
  #offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.#offsetMs);
  }
  /** Moves "now" to `at` (and keeps time flowing from there). */
  travelTo(at: Date): void {
    this.#offsetMs = at.getTime() - Date.now();
  }
  reset(): void {
    this.#offsetMs = 0;
  }
}

export type ConsultationClient = Client<typeof ConsultationService>;

/** A ConsultationService client acting as `session`, over Connect. */
export function consultations(t: TestApp, session: TestSession): ConsultationClient {
  return createClient(
    ConsultationService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
  );
}

/** The refusal of a call: its code and ErrorInfo reason. */
export async function refusal(call: Promise<unknown>): Promise<{ code: Code; reason: string; message: string }> {
  try {
    await call;
  } catch (thrown) {
    const error = ConnectError.from(thrown);
    return { code: error.code, reason: error.findDetails(ErrorInfoSchema)[0]?.reason ?? "", message: error.rawMessage };
  }
  throw new Error("expected the call to be refused");
}

/** Free slots of a doctor at least `fromMs` ahead of the app's now, through the public API. */
export async function freeSlots(client: ConsultationClient, doctor: string, clock: Clock, fromMs = 0): Promise<Slot[]> {
  const start = clock.now().getTime() + fromMs;
  const { slots } = await client.listFreeSlots({
    parent: doctor,
    startTime: { seconds: BigInt(Math.floor(start / 1000)) },
    endTime: { seconds: BigInt(Math.floor(start / 1000) + 14 * 86_400) },
    pageSize: 200,
  });
  return slots;
}

/** Books the doctor's first free slot (at least `fromMs` ahead) as `client` for `parent`. */
export async function bookFirstFree(
  client: ConsultationClient,
  parent: string,
  clock: Clock,
  options: { doctor?: string; fromMs?: number; reason?: string } = {},
) {
  const doctor = options.doctor ?? "doctors/asha-rao";
  const [slot] = await freeSlots(client, doctor, clock, options.fromMs ?? 0);
  if (slot === undefined) throw new Error(`no free slot of ${doctor}`);
  const { consultation } = await client.createConsultation({
    parent,
    consultation: {
      doctor,
      slot: slot.name,
      mode: ConsultationMode.VIDEO,
      reason: options.reason ?? "Chest pain when climbing stairs",
    },
    requestId: randomUUID(),
  });
  if (consultation === undefined) throw new Error("no consultation in the answer");
  return { consultation, slot, startMs: timestampMs(slot.startTime!) };
}
