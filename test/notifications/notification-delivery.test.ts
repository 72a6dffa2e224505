import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { isDeepStrictEqual } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChannelDelivery_State,
  NotificationCategory,
  NotificationChannel,
  NotificationPriority,
} from "../../gen/telemed/patient/v1/notification_pb.js";
import { manualClock } from "../simulators/simulator-fixtures.ts";
import { signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { draftFor, eventually, notificationClient } from "./notification-fixtures.ts";

/**
 * Channel delivery per preferences, on a manual clock that starts at the real time
 * (tokens and TOTP codes are checked against it) and is moved forward by the test.
 */
const clock = manualClock(new Date());
let t: TestApp;
let patient: TestSession;

beforeAll(async () => {
  t = await startTestApp(
    { NOTIFICATION_DISPATCH_INTERVAL_MS: "20", LOG_LEVEL: process.env.X_LOG ?? "silent" },
    { clock, logs: process.stderr },
  );
  patient = await signUpPatient(t);
  // Quiet hours from an hour ago to two hours from now, in India's time zone (UTC+05:30).
  const local = (clock.now().getUTCHours() * 60 + clock.now().getUTCMinutes() + 330) % 1440;
  const at = (minute: number) => ({ hours: Math.floor(minute / 60), minutes: minute % 60 });
  await notificationClient(t, patient.interceptor).updateNotificationPreferences({
    notificationPreferences: {
      name: `${patient.patient}/notificationPreferences`,
      timeZone: "Asia/Kolkata",
      quietHours: { enabled: true, startTime: at((local + 1380) % 1440), endTime: at((local + 120) % 1440) },
      categories: [
        {
          category: NotificationCategory.CONSULTATIONS,
          channels: [NotificationChannel.EMAIL, NotificationChannel.SMS],
        },
        { category: NotificationCategory.BILLING, channels: [] },
      ],
    },
    updateMask: create(FieldMaskSchema, { paths: ["time_zone", "quiet_hours", "categories"] }),
  });
}, 60_000);
afterAll(async () => {
  await t?.close();
});

const sim = () => {
  const simulator = t.app.siblings.simulators?.notification;
  if (simulator === undefined) throw new Error("no notification simulator");
  return simulator;
};
const subjectsTo = (address: string) =>
  sim()
    .messagesTo(address)
    .map((m) => m.subject);

async function deliveriesOf(title: string): Promise<Record<string, ChannelDelivery_State>> {
  const { notifications } = await notificationClient(t, patient.interceptor).listNotifications({
    parent: patient.patient,
    pageSize: 100,
  });
  const found = notifications.find((n) => n.title === title);
  if (found === undefined) throw new Error("not listed");
  return Object.fromEntries(found.deliveries.map((d) => [NotificationChannel[d.channel], d.state]));
}

async function settled(title: string, expected: Record<string, ChannelDelivery_State>): Promise<void> {
  await eventually(async () => {
    const states = await deliveriesOf(title);
    return isDeepStrictEqual(states, expected) ? true : undefined;
  }).catch(async () => expect(await deliveriesOf(title)).toEqual(expected));
}

describe("TST-PT006-2 delivery to the Notification Service per preferences", () => {
  it("quiet hours defer a NORMAL notification until they end; HIGH goes at once; a channel left out is suppressed", async () => {
    const normal = draftFor(patient.patientId);
    const high = draftFor(patient.patientId, { priority: NotificationPriority.HIGH });
    await t.app.notifier.notify([normal, high]);
    await settled(high.title, {
      PUSH: ChannelDelivery_State.SUPPRESSED,
      EMAIL: ChannelDelivery_State.DELIVERED,
      SMS: ChannelDelivery_State.DELIVERED,
    });
    expect(await deliveriesOf(normal.title)).toEqual({
      PUSH: ChannelDelivery_State.SUPPRESSED,
      EMAIL: ChannelDelivery_State.DEFERRED,
      SMS: ChannelDelivery_State.DEFERRED,
    });
    // Several dispatch rounds later, still held.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(subjectsTo(patient.email)).not.toContain(normal.title);

    clock.advance(2 * 3600_000 + 60_000); // past the end of quiet hours
    await settled(normal.title, {
      PUSH: ChannelDelivery_State.SUPPRESSED,
      EMAIL: ChannelDelivery_State.DELIVERED,
      SMS: ChannelDelivery_State.DELIVERED,
    });
    expect(subjectsTo(patient.email).filter((s) => s === normal.title)).toHaveLength(1);
    clock.advance(-(2 * 3600_000 + 60_000)); // back into quiet hours for the other tests
  });

  it("emergencies get through on every channel whatever the preferences and quiet hours say", async () => {
    const emergency = draftFor(patient.patientId, { category: NotificationCategory.EMERGENCIES });
    // Billing is switched off entirely, but CRITICAL overrides it.
    const critical = draftFor(patient.patientId, {
      category: NotificationCategory.BILLING,
      priority: NotificationPriority.CRITICAL,
    });
    const billing = draftFor(patient.patientId, { category: NotificationCategory.BILLING });
    await t.app.notifier.notify([emergency, critical, billing]);
    for (const draft of [emergency, critical]) {
      await settled(draft.title, {
        // No device is registered for push yet: nothing to send to.
        PUSH: ChannelDelivery_State.SUPPRESSED,
        EMAIL: ChannelDelivery_State.DELIVERED,
        SMS: ChannelDelivery_State.DELIVERED,
      });
      expect(subjectsTo(patient.email).filter((s) => s === draft.title)).toHaveLength(1);
    }
    expect(await deliveriesOf(billing.title)).toEqual({
      PUSH: ChannelDelivery_State.SUPPRESSED,
      EMAIL: ChannelDelivery_State.SUPPRESSED,
      SMS: ChannelDelivery_State.SUPPRESSED,
    });
    const texts = sim()
      .list()
      .filter((d) => d.recipient?.address.case === "phone")
      .map((d) => d.content?.textBody ?? "");
    expect(texts).toContain(`${emergency.title}: ${emergency.body}`);
  });

  it("a provider that refuses the address marks the channel FAILED and does not retry it", async () => {
    const other = await signUpPatient(t);
    sim().failDeliveriesTo(other.email);
    const urgent = draftFor(other.patientId, { priority: NotificationPriority.CRITICAL });
    await t.app.notifier.notify([urgent]);
    await eventually(async () => {
      const { notifications } = await notificationClient(t, other.interceptor).listNotifications({
        parent: other.patient,
      });
      const email = notifications[0]?.deliveries.find((d) => d.channel === NotificationChannel.EMAIL);
      return email?.state === ChannelDelivery_State.FAILED ? true : undefined;
    });
    expect(
      sim()
        .list()
        .filter((d) => d.content?.subject === urgent.title && d.recipient?.address.case === "email"),
    ).toHaveLength(1);
  });
});
