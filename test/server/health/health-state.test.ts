import { describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../../gen/grpc/health/v1/health_pb.js";
import { HealthState } from "../../../src/server/health/health-state.ts";

const patients = "telemed.patient.v1.PatientService";

describe("HealthState", () => {
  it("starts with the whole server SERVING and knows no other name", () => {
    const state = new HealthState();
    expect(state.get("")).toBe(ServingStatus.SERVING);
    expect(state.get(patients)).toBeUndefined();
  });

  it("starts from the statuses given", () => {
    const state = new HealthState([["", ServingStatus.NOT_SERVING]]);
    expect(state.get("")).toBe(ServingStatus.NOT_SERVING);
  });

  it("accepts a status by its name", () => {
    const state = new HealthState();
    state.set(patients, "NOT_SERVING");
    expect(state.get(patients)).toBe(ServingStatus.NOT_SERVING);
  });

  it("tells the listeners of a name about changes, once per change", () => {
    const state = new HealthState();
    const seen: ServingStatus[] = [];
    const other: ServingStatus[] = [];
    state.subscribe(patients, (status) => seen.push(status));
    state.subscribe("", (status) => other.push(status));
    state.set(patients, ServingStatus.SERVING);
    state.set(patients, ServingStatus.SERVING);
    state.set(patients, ServingStatus.NOT_SERVING);
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect(other).toEqual([]);
  });

  it("stops calling a listener once unsubscribed, and forgets it", () => {
    const state = new HealthState();
    const seen: ServingStatus[] = [];
    const unsubscribe = state.subscribe(patients, (status) => seen.push(status));
    expect(state.listenerCount).toBe(1);
    unsubscribe();
    unsubscribe();
    state.set(patients, ServingStatus.SERVING);
    expect(seen).toEqual([]);
    expect(state.listenerCount).toBe(0);
  });

  it("shutdown marks every name NOT_SERVING and ignores later sets", () => {
    const state = new HealthState();
    state.set(patients, ServingStatus.SERVING);
    const seen: ServingStatus[] = [];
    state.subscribe(patients, (status) => seen.push(status));
    state.shutdown();
    state.set(patients, ServingStatus.SERVING);
    state.set("other", ServingStatus.SERVING);
    expect(state.isShutDown).toBe(true);
    expect([...state.entries()]).toEqual([
      ["", ServingStatus.NOT_SERVING],
      [patients, ServingStatus.NOT_SERVING],
    ]);
    expect(seen).toEqual([ServingStatus.NOT_SERVING]);
  });
});
