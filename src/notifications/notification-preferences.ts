import {
  type CategoryName,
  type ChannelName,
  channelNames,
  type DeliveryState,
  isUrgent,
  type PriorityName,
} from "./notification.ts";
import { type QuietHours, quietPeriodEnd } from "./quiet-hours.ts";

/** A patient's stored preferences; `undefined` fields mean "the default". */
export interface NotificationPreferences {
  readonly patientId: string;
  /** Channels per category the patient set; other categories use `defaultChannels`. */
  readonly categories: ReadonlyMap<CategoryName, readonly ChannelName[]>;
  /** Undefined: quiet hours off. */
  readonly quietHours: QuietHours | undefined;
  readonly timeZone: string | undefined;
  readonly reminderOffsetsSeconds: readonly number[] | undefined;
  /** 0 for preferences never stored (the defaults); each change adds one. */
  readonly version: number;
  readonly updateTime: Date | undefined;
}

/**
 * Channels used when a patient has not chosen: the in-app stream always, push and
 * email for what matters to care, email for billing and account security, and no
 * marketing until the patient opts in. Emergencies use every channel regardless.
 */
export const defaultChannels: Readonly<Record<CategoryName, readonly ChannelName[]>> = {
  consultations: ["push", "email"],
  emergencies: ["push", "email", "sms"],
  health_alerts: ["push", "email"],
  billing: ["email"],
  marketing: [],
  account: ["email"],
};

/** The preferences of a patient who never set any. */
export function defaultPreferences(patientId: string): NotificationPreferences {
  return {
    patientId,
    categories: new Map(),
    quietHours: undefined,
    timeZone: undefined,
    reminderOffsetsSeconds: undefined,
    version: 0,
    updateTime: undefined,
  };
}

/** The channels a category goes out on for this patient. */
export function channelsFor(preferences: NotificationPreferences, category: CategoryName): readonly ChannelName[] {
  return preferences.categories.get(category) ?? defaultChannels[category];
}

/** What happens on one channel when a notification is recorded. */
export interface ChannelPlan {
  readonly channel: ChannelName;
  /** `pending` (send now), `deferred` (send at `dueAt`) or `suppressed` (never). */
  readonly state: Extract<DeliveryState, "pending" | "deferred" | "suppressed">;
  /** When to send; undefined for suppressed. */
  readonly dueAt: Date | undefined;
}

/**
 * The delivery plan of a notification for each external channel. Urgent ones
 * (category EMERGENCIES or priority CRITICAL) go out on every channel at once,
 * whatever the preferences say. Otherwise a channel the patient turned off is
 * suppressed, and during quiet hours (in the patient's time zone) only HIGH
 * priority goes out at once: NORMAL waits until the quiet period ends.
 */
export function planDeliveries(
  notification: { readonly category: CategoryName; readonly priority: PriorityName },
  preferences: NotificationPreferences,
  now: Date,
  defaultTimeZone: string,
): ChannelPlan[] {
  if (isUrgent(notification.category, notification.priority)) {
    return channelNames.map((channel) => ({ channel, state: "pending", dueAt: now }));
  }
  const enabled = new Set(channelsFor(preferences, notification.category));
  const quietEnd =
    notification.priority === "normal" && preferences.quietHours !== undefined
      ? quietPeriodEnd(now, preferences.quietHours, preferences.timeZone ?? defaultTimeZone)
      : undefined;
  return channelNames.map((channel): ChannelPlan => {
    if (!enabled.has(channel)) return { channel, state: "suppressed", dueAt: undefined };
    if (quietEnd !== undefined) return { channel, state: "deferred", dueAt: quietEnd };
    return { channel, state: "pending", dueAt: now };
  });
}

/** The etag of a version (AIP-154); opaque to clients. */
export function preferencesEtag(version: number): string {
  return `v${version}`;
}

/** The version an etag names; undefined when it is not one of ours. */
export function versionFromPreferencesEtag(etag: string): number | undefined {
  const match = /^v(\d{1,9})$/.exec(etag);
  return match === null ? undefined : Number(match[1]);
}
