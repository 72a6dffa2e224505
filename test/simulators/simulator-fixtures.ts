import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { createSiblingClients, type SiblingClients } from "../../src/siblings/sibling-clients.ts";
import type { Clock } from "../../src/shared/clock.ts";
import { type RunningSimulators, startSimulators } from "../../src/simulators/start-simulators.ts";

/** A clock the test moves by hand. */
export interface ManualClock extends Clock {
  set(at: Date | string): void;
  advance(ms: number): void;
}

/** A clock standing still at `start` until told otherwise. */
export function manualClock(start: Date | string): ManualClock {
  let now = new Date(start).getTime();
  return {
    now: () => new Date(now),
    set: (at) => {
      now = new Date(at).getTime();
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

/** Simulators on a free port with the Patient Service's own clients pointed at them. */
export interface SimulatorHarness {
  readonly sims: RunningSimulators;
  readonly clients: SiblingClients;
  readonly clock: ManualClock;
  close(): Promise<void>;
}

/** Monday 7 January 2030, midnight UTC: a known weekday, in winter (no DST in Europe). */
export const monday = "2030-01-07T00:00:00Z";

export async function startHarness(start: Date | string = monday): Promise<SimulatorHarness> {
  const clock = manualClock(start);
  const sims = await startSimulators({ clock, seed: 7 });
  const url = sims.url;
  const clients = createSiblingClients({ doctor: url, paramedic: url, xray: url, notification: url });
  return {
    sims,
    clients,
    clock,
    close: async () => {
      clients.close();
      await sims.stop();
    },
  };
}

/** The error a call failed with; fails the test when it succeeded. */
export async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => ConnectError.from(error),
  );
  if (!outcome) throw new Error("the call succeeded");
  return outcome;
}

/** Code, ErrorInfo reason and domain of a refusal, for one-line assertions. */
export function describeRefusal(error: ConnectError): {
  code: string;
  reason: string | undefined;
  domain: string | undefined;
} {
  const info = error.findDetails(ErrorInfoSchema)[0];
  return { code: Code[error.code], reason: info?.reason, domain: info?.domain };
}
