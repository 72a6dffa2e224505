/**
 * The notifications context's domain vocabulary, free of the ORM and of `gen/`: the
 * short lower-case names are what the database stores (checked there too).
 */
export const categoryNames = [
  "consultations",
  "emergencies",
  "health_alerts",
  "billing",
  "marketing",
  "account",
] as const;
export type CategoryName = (typeof categoryNames)[number];

/** External channels; IN_APP (the store and the stream) is always on and has no delivery. */
export const channelNames = ["push", "email", "sms"] as const;
export type ChannelName = (typeof channelNames)[number];

export const priorityNames = ["normal", "high", "critical"] as const;
export type PriorityName = (typeof priorityNames)[number];

/** Where a channel delivery stands (ChannelDelivery.State). */
export const deliveryStates = ["pending", "deferred", "delivered", "failed", "suppressed"] as const;
export type DeliveryState = (typeof deliveryStates)[number];

/** One channel's delivery of a notification, as the patient sees it. */
export interface ChannelDeliveryView {
  readonly channel: ChannelName;
  readonly state: DeliveryState;
  readonly updateTime: Date;
}

/** A stored notification. */
export interface StoredNotification {
  readonly id: string;
  readonly recipientId: string;
  /** Position in the recipient's stream: commit order for that recipient, gaps allowed. */
  readonly sequence: number;
  readonly aboutPatientId: string | undefined;
  readonly category: CategoryName;
  readonly priority: PriorityName;
  readonly title: string;
  readonly body: string;
  readonly subjectResource: string | undefined;
  readonly expireTime: Date | undefined;
  readonly createTime: Date;
  readonly readTime: Date | undefined;
  readonly deliveries: readonly ChannelDeliveryView[];
}

/** Urgent notifications ignore preferences and quiet hours: an emergency always gets through. */
export function isUrgent(category: CategoryName, priority: PriorityName): boolean {
  return category === "emergencies" || priority === "critical";
}
