import { create } from "@bufbuild/protobuf";
import { durationFromMs, FieldMaskSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationCategory, NotificationChannel } from "../../gen/telemed/patient/v1/notification_pb.js";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { draftFor, notificationClient } from "./notification-fixtures.ts";

let t: TestApp;
let owner: TestSession;
let other: TestSession;
let admin: TestSession;
beforeAll(async () => {
  t = await startTestApp();
  [owner, other, admin] = await Promise.all([signUpPatient(t), signUpPatient(t), staffSession(t, "admin")]);
}, 60_000);
afterAll(async () => {
  await t?.close();
});

const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });

describe("ListNotifications and MarkNotificationsRead", () => {
  it("pages newest first with opaque tokens, filters by category and unread, and marks read", async () => {
    const patient = await signUpPatient(t);
    const drafts = Array.from({ length: 7 }, (_, i) =>
      draftFor(patient.patientId, {
        category: i % 2 === 0 ? NotificationCategory.CONSULTATIONS : NotificationCategory.HEALTH_ALERTS,
      }),
    );
    for (const draft of drafts) await t.app.notifier.notify([draft]);
    const client = notificationClient(t, patient.interceptor);
    const titles: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listNotifications({ parent: patient.patient, pageSize: 3, pageToken });
      expect(page.notifications.length).toBeLessThanOrEqual(3);
      expect(page.unreadCount).toBe(7);
      titles.push(...page.notifications.map((n) => n.title));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(titles).toEqual(drafts.map((d) => d.title).reverse());

    const health = await client.listNotifications({
      parent: patient.patient,
      categories: [NotificationCategory.HEALTH_ALERTS],
    });
    expect(health.notifications.map((n) => n.title)).toEqual([drafts[5], drafts[3], drafts[1]].map((d) => d?.title));
    // A token is bound to its query.
    const first = await client.listNotifications({ parent: patient.patient, pageSize: 2 });
    await expect(
      client.listNotifications({
        parent: patient.patient,
        pageSize: 2,
        unreadOnly: true,
        pageToken: first.nextPageToken,
      }),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });

    const marked = await client.markNotificationsRead({
      parent: patient.patient,
      names: health.notifications.map((n) => n.name),
    });
    expect(marked.markedCount).toBe(3);
    // Marking again changes nothing.
    expect(
      (await client.markNotificationsRead({ parent: patient.patient, names: [health.notifications[0]?.name ?? ""] }))
        .markedCount,
    ).toBe(0);
    const unread = await client.listNotifications({ parent: patient.patient, unreadOnly: true });
    expect(unread.unreadCount).toBe(4);
    expect(unread.notifications.every((n) => n.readTime === undefined)).toBe(true);
    const all = await client.markNotificationsRead({
      parent: patient.patient,
      readThroughTime: timestampFromDate(new Date(Date.now() + 1000)),
    });
    expect(all.markedCount).toBe(4);
    expect((await client.listNotifications({ parent: patient.patient })).unreadCount).toBe(0);
  });

  it("another patient's notifications answer NOT_FOUND and are not marked; an admin may read them", async () => {
    await t.app.notifier.notify([draftFor(owner.patientId)]);
    const asOther = notificationClient(t, other.interceptor);
    await expect(asOther.listNotifications({ parent: owner.patient })).rejects.toMatchObject({ code: Code.NotFound });
    const { notifications } = await notificationClient(t, admin.interceptor).listNotifications({
      parent: owner.patient,
    });
    expect(notifications).toHaveLength(1);
    await expect(
      asOther.markNotificationsRead({ parent: owner.patient, names: [notifications[0]?.name ?? ""] }),
    ).rejects.toMatchObject({ code: Code.NotFound });
    // Naming another patient's notification under one's own parent is refused by the contract.
    await expect(
      asOther.markNotificationsRead({ parent: other.patient, names: [notifications[0]?.name ?? ""] }),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
    const again = await notificationClient(t, owner.interceptor).listNotifications({ parent: owner.patient });
    expect(again.unreadCount).toBe(1);
  });
});

describe("secondary requirement 6: notification preferences", () => {
  it("start as defaults and change only the fields the mask names, guarded by the etag", async () => {
    const client = notificationClient(t, owner.interceptor);
    const name = `${owner.patient}/notificationPreferences`;
    const { notificationPreferences: defaults } = await client.getNotificationPreferences({ name });
    expect(defaults?.etag).toBe("v0");
    expect(defaults?.timeZone).toBe("UTC");
    expect(defaults?.consultationReminderOffsets.map((d) => Number(d.seconds))).toEqual([86_400, 900]);
    expect(defaults?.categories.find((c) => c.category === NotificationCategory.MARKETING)?.channels).toEqual([]);

    const { notificationPreferences: updated } = await client.updateNotificationPreferences({
      notificationPreferences: {
        name,
        etag: defaults?.etag ?? "",
        timeZone: "Asia/Kolkata",
        consultationReminderOffsets: [durationFromMs(3600_000)],
        categories: [{ category: NotificationCategory.MARKETING, channels: [NotificationChannel.EMAIL] }],
      },
      updateMask: mask("time_zone", "categories"),
    });
    expect(updated?.timeZone).toBe("Asia/Kolkata");
    // Not in the mask: unchanged.
    expect(updated?.consultationReminderOffsets.map((d) => Number(d.seconds))).toEqual([86_400, 900]);
    expect(updated?.categories.find((c) => c.category === NotificationCategory.MARKETING)?.channels).toEqual([
      NotificationChannel.EMAIL,
    ]);
    expect(updated?.etag).not.toBe(defaults?.etag);

    // A stale etag is ABORTED and changes nothing.
    await expect(
      client.updateNotificationPreferences({
        notificationPreferences: { name, etag: defaults?.etag ?? "", timeZone: "Europe/Paris" },
        updateMask: mask("time_zone"),
      }),
    ).rejects.toMatchObject({ code: Code.Aborted });
    expect((await client.getNotificationPreferences({ name })).notificationPreferences?.timeZone).toBe("Asia/Kolkata");
  });

  it("refuse what cannot work: an unknown time zone, empty quiet hours, a field outside the mask's list", async () => {
    const client = notificationClient(t, owner.interceptor);
    const name = `${owner.patient}/notificationPreferences`;
    const attempts = [
      { notificationPreferences: { name, timeZone: "Mars/Olympus_Mons" }, updateMask: mask("time_zone") },
      {
        notificationPreferences: {
          name,
          quietHours: { enabled: true, startTime: { hours: 22 }, endTime: { hours: 22 } },
        },
        updateMask: mask("quiet_hours"),
      },
      { notificationPreferences: { name, quietHours: { enabled: true } }, updateMask: mask("quiet_hours") },
      { notificationPreferences: { name, etag: "v1" }, updateMask: mask("etag") },
      {
        notificationPreferences: { name, consultationReminderOffsets: [durationFromMs(60_000)] },
        updateMask: mask("consultation_reminder_offsets"),
      },
    ];
    for (const request of attempts) {
      await expect(client.updateNotificationPreferences(request)).rejects.toMatchObject({
        code: Code.InvalidArgument,
      });
    }
  });

  it("another patient's preferences answer NOT_FOUND", async () => {
    const name = `${owner.patient}/notificationPreferences`;
    const asOther = notificationClient(t, other.interceptor);
    await expect(asOther.getNotificationPreferences({ name })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(
      asOther.updateNotificationPreferences({
        notificationPreferences: { name, timeZone: "UTC" },
        updateMask: mask("time_zone"),
      }),
    ).rejects.toMatchObject({ code: Code.NotFound });
  });
});
