import { afterAll, describe, expect, it } from "vitest";
import { startSimulators } from "../../src/simulators/start-simulators.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

const apps: TestApp[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
});

describe("sibling services: embedded simulators by default, configured URLs when set", () => {
  it("starts the simulators in embedded mode and reaches the Doctor Service over gRPC", async () => {
    const t = await startTestApp();
    apps.push(t);
    expect(t.app.siblings.simulators).toBeDefined();
    const { doctors } = await t.app.siblings.clients.doctor.listDoctors({ pageSize: 50 });
    expect(doctors.length).toBeGreaterThan(0);
  });

  it("uses the configured sibling addresses and starts no simulator when all four are set", async () => {
    const external = await startSimulators();
    try {
      const t = await startTestApp({
        DOCTOR_SERVICE_URL: external.url,
        PARAMEDIC_SERVICE_URL: external.url,
        XRAY_SERVICE_URL: external.url,
        NOTIFICATION_SERVICE_URL: external.url,
        // Every sibling has a URL (SIMULATORS=off): billing's UPI simulator needs the explicit opt-in.
        PAYMENT_SIMULATOR: "embedded",
      });
      apps.push(t);
      expect(t.app.siblings.simulators).toBeUndefined();
      const { doctors } = await t.app.siblings.clients.doctor.listDoctors({ pageSize: 50 });
      expect(doctors.map((d) => d.name)).toEqual(external.doctor.doctors().map((d) => `doctors/${d.id}`));
      // Proof that the calls went to the configured server: once it stops, they fail.
      await external.stop();
      await expect(t.app.siblings.clients.doctor.listDoctors({ pageSize: 1 })).rejects.toThrow();
    } finally {
      await external.stop().catch(() => undefined);
    }
  });
});
