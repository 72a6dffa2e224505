import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type NotificationPreferences as NotificationPreferencesProto,
  NotificationPreferencesSchema,
} from "../../gen/telemed/patient/v1/notification_pb.js";
import { DomainError, type FieldViolation } from "../shared/domain-errors.ts";
import { type CategoryName, categoryNames, type ChannelName } from "./notification.ts";
import { isKnownTimeZone } from "./notification-config.ts";
import { categoryFromProto, categoryToProto, channelFromProto, channelToProto } from "./notification-mapping.ts";
import { channelsFor, type NotificationPreferences, preferencesEtag } from "./notification-preferences.ts";
import type { PreferenceChanges } from "./preference-store.ts";

/** The fields UpdateNotificationPreferences may name (the contract's field_mask rule lists the same). */
export const preferenceFields = ["categories", "quiet_hours", "time_zone", "consultation_reminder_offsets"] as const;
type PreferenceField = (typeof preferenceFields)[number];

/**
 * Preferences as the API shows them: every category with the channels in effect
 * (defaults filled in), the time zone and reminder offsets in effect, so a client that
 * reads, edits and writes back keeps what it did not touch.
 */
export function preferencesToProto(
  preferences: NotificationPreferences,
  defaults: { timeZone: string; reminderOffsetsSeconds: readonly number[] },
): NotificationPreferencesProto {
  const quiet = preferences.quietHours;
  const time = (minute: number) => ({ hours: Math.floor(minute / 60), minutes: minute % 60, seconds: 0, nanos: 0 });
  return create(NotificationPreferencesSchema, {
    name: `patients/${preferences.patientId}/notificationPreferences`,
    categories: categoryNames.map((category) => ({
      category: categoryToProto.get(category),
      channels: channelsFor(preferences, category).map((channel) => channelToProto.get(channel) as number),
    })),
    quietHours:
      quiet === undefined
        ? { enabled: false }
        : { enabled: true, startTime: time(quiet.startMinute), endTime: time(quiet.endMinute) },
    timeZone: preferences.timeZone ?? defaults.timeZone,
    consultationReminderOffsets: (preferences.reminderOffsetsSeconds ?? defaults.reminderOffsetsSeconds).map(
      (seconds) => durationFromMs(seconds * 1000),
    ),
    updateTime: preferences.updateTime === undefined ? undefined : timestampFromDate(preferences.updateTime),
    etag: preferencesEtag(preferences.version),
  });
}

/**
 * The changes an update asks for, from the fields its mask names (each replaced
 * whole). Checks what protovalidate cannot: a real IANA zone, quiet hours that are
 * not empty, whole-second offsets. INVALID_ARGUMENT with every problem at once.
 */
export function preferenceChangesFromProto(
  source: NotificationPreferencesProto,
  paths: readonly string[],
): PreferenceChanges {
  const fields = new Set(paths as PreferenceField[]);
  const violations: FieldViolation[] = [];
  const changes: {
    -readonly [K in keyof PreferenceChanges]: PreferenceChanges[K];
  } = {};
  if (fields.has("categories")) {
    const categories = new Map<CategoryName, ChannelName[]>();
    for (const entry of source.categories) {
      const category = categoryFromProto.get(entry.category);
      if (category === undefined) continue;
      // IN_APP is always on; listing it changes nothing.
      const channels = entry.channels
        .map((channel) => channelFromProto.get(channel))
        .filter((c): c is ChannelName => c !== undefined);
      categories.set(category, [...new Set(channels)]);
    }
    changes.categories = categories;
  }
  if (fields.has("quiet_hours")) {
    const quiet = source.quietHours;
    if (quiet === undefined || !quiet.enabled) {
      changes.quietHours = undefined;
    } else {
      const start = (quiet.startTime?.hours ?? 0) * 60 + (quiet.startTime?.minutes ?? 0);
      const end = (quiet.endTime?.hours ?? 0) * 60 + (quiet.endTime?.minutes ?? 0);
      if (start === end) {
        violations.push({
          field: "notification_preferences.quiet_hours",
          description: "start_time and end_time must differ",
        });
      }
      changes.quietHours = { startMinute: start, endMinute: end };
    }
  }
  if (fields.has("time_zone")) {
    const zone = source.timeZone;
    if (zone !== "" && !isKnownTimeZone(zone)) {
      violations.push({ field: "notification_preferences.time_zone", description: "is not an IANA time zone" });
    }
    // Empty means "the service's default zone".
    changes.timeZone = zone === "" ? undefined : zone;
  }
  if (fields.has("consultation_reminder_offsets")) {
    const offsets = source.consultationReminderOffsets;
    if (offsets.some((offset) => offset.nanos !== 0)) {
      violations.push({
        field: "notification_preferences.consultation_reminder_offsets",
        description: "offsets must be whole seconds",
      });
    }
    // An empty list is a choice: no consultation reminders.
    changes.reminderOffsetsSeconds = [...new Set(offsets.map((offset) => Number(offset.seconds)))].sort(
      (a, b) => b - a,
    );
  }
  if (violations.length > 0) {
    throw new DomainError("invalid-argument", "INVALID_PREFERENCES", "Invalid notification preferences.", {
      violations,
    });
  }
  return changes;
}
