import { describe, expect, it } from "vitest";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { EmergencyService } from "../../gen/telemed/patient/v1/emergency_service_pb.js";
import { routineUnderPrecedence } from "../../src/app/emergencies-part.ts";
import { PrecedenceGate } from "../../src/emergencies/precedence-gate.ts";
import type { ServiceRegistration } from "../../src/rpc/call-pipeline.ts";

/** A promise with its resolve, for work that ends when the test says so. */
function pending<T = void>() {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("precedence gate (functional safety 3)", () => {
  it("outside emergency work, routine calls start at once and are never held", async () => {
    const gate = new PrecedenceGate({ routineCalls: 1, graceMs: 10 });
    const started: number[] = [];
    const works = [1, 2, 3].map((n) =>
      gate.routine(async () => {
        started.push(n);
        return n;
      }),
    );
    expect(await Promise.all(works)).toEqual([1, 2, 3]);
    expect(started).toEqual([1, 2, 3]);
    expect(gate.holding).toBe(false);
    expect(gate.heldCalls).toBe(0);
  });

  it("while emergency work runs, routine calls beyond the limit wait in order and start after the grace", async () => {
    const gate = new PrecedenceGate({ routineCalls: 1, graceMs: 30 });
    const emergency = pending();
    const done = gate.emergency(() => emergency.promise);
    expect(gate.holding).toBe(true);
    const started: number[] = [];
    const blockers = [pending(), pending()];
    const works = [0, 1, 2].map((n) =>
      gate.routine(async () => {
        started.push(n);
        if (n < 2) await (blockers[n] as ReturnType<typeof pending>).promise;
      }),
    );
    await settle();
    expect(started).toEqual([0]);
    expect(gate.heldCalls).toBe(2);

    // The running call finishes: the next waiting one takes its place, no more.
    blockers[0]?.resolve();
    await settle();
    expect(started).toEqual([0, 1]);

    // The emergency ends: the last one waits out the grace, then starts.
    emergency.resolve();
    await done;
    await settle();
    expect(started).toEqual([0, 1]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(started).toEqual([0, 1, 2]);
    expect(gate.holding).toBe(false);
    blockers[1]?.resolve();
    await Promise.all(works);
  });

  it("a new emergency during the grace keeps the hold; the hold ends after the last one", async () => {
    const gate = new PrecedenceGate({ routineCalls: 1, graceMs: 20 });
    const running = pending();
    await gate.emergency(async () => undefined);
    expect(gate.holding).toBe(true);
    const first = gate.routine(() => running.promise);
    let secondStarted = false;
    const second = gate.routine(async () => {
      secondStarted = true;
    });
    const again = pending();
    const work = gate.emergency(() => again.promise);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(secondStarted).toBe(false);
    again.resolve();
    await work;
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(secondStarted).toBe(true);
    expect(gate.holding).toBe(false);
    running.resolve();
    await Promise.all([first, second]);
  });

  it("emergency work's result and failure pass through, and a failed routine call frees its place", async () => {
    const gate = new PrecedenceGate({ routineCalls: 1, graceMs: 0 });
    expect(await gate.emergency(async () => 7)).toBe(7);
    await expect(gate.emergency(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    const hold = pending();
    const emergency = gate.emergency(() => hold.promise);
    await expect(gate.routine(() => Promise.reject(new Error("routine failed")))).rejects.toThrow("routine failed");
    expect(await gate.routine(async () => "next")).toBe("next");
    hold.resolve();
    await emergency;
  });

  it("0 routine calls turns the gate off", async () => {
    const gate = new PrecedenceGate({ routineCalls: 0, graceMs: 1000 });
    const hold = pending();
    const emergency = gate.emergency(() => hold.promise);
    expect(gate.holding).toBe(false);
    expect(await gate.routine(async () => "ran")).toBe("ran");
    hold.resolve();
    await emergency;
  });

  it("routineUnderPrecedence gates the unary methods of every service but EmergencyService", async () => {
    const gate = new PrecedenceGate({ routineCalls: 1, graceMs: 0 });
    const calls: string[] = [];
    const patients: ServiceRegistration<typeof PatientService> = {
      service: PatientService,
      impl: {
        async getPatient() {
          calls.push("getPatient");
          return {};
        },
      },
    };
    const emergencies: ServiceRegistration<typeof EmergencyService> = {
      service: EmergencyService,
      impl: { createEmergency: async () => ({}) },
    };
    const registrations = [patients, emergencies] as ServiceRegistration[];
    const gated = routineUnderPrecedence(registrations, gate);
    expect(gated[1]).toBe(registrations[1]);
    const getPatient = ((gated[0] as ServiceRegistration).impl as Record<string, unknown>).getPatient as (
      request: unknown,
      context: unknown,
    ) => Promise<unknown>;
    await getPatient({}, {});
    expect(calls).toEqual(["getPatient"]);

    const hold = pending();
    const emergency = gate.emergency(() => hold.promise);
    const blocker = pending();
    const first = gate.routine(() => blocker.promise);
    const second = getPatient({}, {});
    await settle();
    expect(calls).toEqual(["getPatient"]);
    blocker.resolve();
    await first;
    await second;
    expect(calls).toEqual(["getPatient", "getPatient"]);
    hold.resolve();
    await emergency;
  });

  it("routineUnderPrecedence keeps handlers a class instance has on its prototype, bound to it", async () => {
    class Patients {
      readonly seen: string[] = [];
      async getPatient() {
        this.seen.push("getPatient");
        return {};
      }
    }
    const instance = new Patients();
    const registration = { service: PatientService, impl: instance } as unknown as ServiceRegistration;
    const [gated] = routineUnderPrecedence([registration], new PrecedenceGate({ routineCalls: 0, graceMs: 0 }));
    const getPatient = ((gated as ServiceRegistration).impl as Record<string, unknown>).getPatient as (
      request: unknown,
      context: unknown,
    ) => Promise<unknown>;
    await getPatient({}, {});
    expect(instance.seen).toEqual(["getPatient"]);
  });
});
