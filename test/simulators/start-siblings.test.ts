import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { SiblingUrls } from "../../src/config/config.ts";
import { type RunningSiblings, startSiblings } from "../../src/siblings/start-siblings.ts";
import { startSimulators } from "../../src/simulators/start-simulators.ts";

const quiet = pino({ level: "silent" });
const none: SiblingUrls = { doctor: undefined, paramedic: undefined, xray: undefined, notification: undefined };
const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()?.stop();
});

async function start(config: Parameters<typeof startSiblings>[0]): Promise<RunningSiblings> {
  const siblings = await startSiblings(config, quiet);
  running.push(siblings);
  return siblings;
}

describe("startSiblings", () => {
  it("embedded: starts the simulators on one port and the clients reach every sibling", async () => {
    const siblings = await start({ simulators: "embedded", siblings: none });
    const url = siblings.simulators!.url;
    expect(siblings.endpoints).toEqual({ doctor: url, paramedic: url, xray: url, notification: url });
    expect((await siblings.clients.doctor.listDoctors({})).doctors.length).toBe(8);
    expect((await siblings.clients.paramedic.getUnit({ name: "units/amb-01" })).unit?.callSign).toBe("AMB-01");
    expect(
      (await siblings.clients.xray.listStudies({ patientReference: "patients/demo-patient" })).studies,
    ).toHaveLength(2);
    expect((await siblings.clients.notification.listDeliveries({})).deliveries).toEqual([]);
  });

  it("a configured URL wins over the simulator; the others are simulated", async () => {
    const external = await startSimulators();
    running.push(external);
    const siblings = await start({ simulators: "embedded", siblings: { ...none, doctor: external.url } });
    expect(siblings.endpoints.doctor).toBe(external.url);
    expect(siblings.endpoints.xray).toBe(siblings.simulators!.url);
    expect(siblings.simulators!.url).not.toBe(external.url);
    external.doctor.setAcceptingBookings("asha-rao", false);
    const { doctor } = await siblings.clients.doctor.getDoctor({ name: "doctors/asha-rao" });
    expect(doctor?.acceptingBookings).toBe(false); // answered by the configured one
  });

  it("starts no simulator when every sibling has a URL, and refuses a missing URL with SIMULATORS=off", async () => {
    const external = await startSimulators();
    running.push(external);
    const all = { doctor: external.url, paramedic: external.url, xray: external.url, notification: external.url };
    const siblings = await start({ simulators: "embedded", siblings: all });
    expect(siblings.simulators).toBeUndefined();
    await expect(startSiblings({ simulators: "off", siblings: { ...all, xray: undefined } }, quiet)).rejects.toThrow(
      /xray/,
    );
  });
});
