import { describe, expect, it } from "vitest";
import { defaultPreferences, planDeliveries } from "../../src/notifications/notification-preferences.ts";
import { quietPeriodEnd } from "../../src/notifications/quiet-hours.ts";

const night = { startMinute: 22 * 60, endMinute: 7 * 60 };

describe("quiet hours in the patient's time zone", () => {
  it("span midnight: late evening and early morning are quiet, and end at 07:00 local time", () => {
    // 23:30 in Kolkata is 18:00 UTC; quiet ends 07:00 IST = 01:30 UTC the next day.
    expect(quietPeriodEnd(new Date("2030-01-07T18:00:00Z"), night, "Asia/Kolkata")?.toISOString()).toBe(
      "2030-01-08T01:30:00.000Z",
    );
    // 05:00 IST (23:30 UTC the day before): ends the same local morning.
    expect(quietPeriodEnd(new Date("2030-01-06T23:30:00Z"), night, "Asia/Kolkata")?.toISOString()).toBe(
      "2030-01-07T01:30:00.000Z",
    );
    // 12:00 IST: not quiet.
    expect(quietPeriodEnd(new Date("2030-01-07T06:30:00Z"), night, "Asia/Kolkata")).toBeUndefined();
  });

  it("resolve the end across a daylight-saving change (New York, spring forward on 2030-03-10)", () => {
    // 23:00 EST on 9 March (04:00 UTC 10 March); 07:00 EDT on 10 March is 11:00 UTC.
    expect(quietPeriodEnd(new Date("2030-03-10T04:00:00Z"), night, "America/New_York")?.toISOString()).toBe(
      "2030-03-10T11:00:00.000Z",
    );
  });

  it("a daytime window does not span midnight", () => {
    const lunch = { startMinute: 12 * 60, endMinute: 13 * 60 };
    expect(quietPeriodEnd(new Date("2030-01-07T12:30:00Z"), lunch, "UTC")?.toISOString()).toBe(
      "2030-01-07T13:00:00.000Z",
    );
    expect(quietPeriodEnd(new Date("2030-01-07T13:00:00Z"), lunch, "UTC")).toBeUndefined();
  });

  it("plans: NORMAL waits, HIGH goes, urgent ignores preferences, a disabled channel is suppressed", () => {
    const now = new Date("2030-01-07T23:00:00Z");
    const prefs = { ...defaultPreferences("p"), quietHours: night, timeZone: "UTC" };
    expect(planDeliveries({ category: "consultations", priority: "normal" }, prefs, now, "UTC")).toEqual([
      { channel: "push", state: "deferred", dueAt: new Date("2030-01-08T07:00:00Z") },
      { channel: "email", state: "deferred", dueAt: new Date("2030-01-08T07:00:00Z") },
      { channel: "sms", state: "suppressed", dueAt: undefined },
    ]);
    expect(
      planDeliveries({ category: "consultations", priority: "high" }, prefs, now, "UTC").map((p) => p.state),
    ).toEqual(["pending", "pending", "suppressed"]);
    const noneAtAll = { ...prefs, categories: new Map([["emergencies", []]] as const) };
    expect(
      planDeliveries({ category: "emergencies", priority: "normal" }, noneAtAll, now, "UTC").map((p) => p.state),
    ).toEqual(["pending", "pending", "pending"]);
    expect(
      planDeliveries({ category: "marketing", priority: "critical" }, prefs, now, "UTC").map((p) => p.state),
    ).toEqual(["pending", "pending", "pending"]);
    expect(
      planDeliveries({ category: "marketing", priority: "normal" }, prefs, now, "UTC").map((p) => p.state),
    ).toEqual(["suppressed", "suppressed", "suppressed"]);
  });
});
