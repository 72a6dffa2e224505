import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ChannelDelivery_State,
  type Notification,
  NotificationCategory,
  NotificationChannel,
  NotificationPriority,
  NotificationSchema,
} from "../../gen/telemed/patient/v1/notification_pb.js";
import type { CategoryName, ChannelName, DeliveryState, PriorityName, StoredNotification } from "./notification.ts";
import { encodeCursor } from "./notification-cursor.ts";

export const categoryFromProto: ReadonlyMap<NotificationCategory, CategoryName> = new Map([
  [NotificationCategory.CONSULTATIONS, "consultations"],
  [NotificationCategory.EMERGENCIES, "emergencies"],
  [NotificationCategory.HEALTH_ALERTS, "health_alerts"],
  [NotificationCategory.BILLING, "billing"],
  [NotificationCategory.MARKETING, "marketing"],
  [NotificationCategory.ACCOUNT, "account"],
]);
export const categoryToProto = new Map([...categoryFromProto].map(([proto, name]) => [name, proto]));

export const channelFromProto: ReadonlyMap<NotificationChannel, ChannelName> = new Map([
  [NotificationChannel.PUSH, "push"],
  [NotificationChannel.EMAIL, "email"],
  [NotificationChannel.SMS, "sms"],
]);
export const channelToProto = new Map([...channelFromProto].map(([proto, name]) => [name, proto]));

export const priorityFromProto: ReadonlyMap<NotificationPriority, PriorityName> = new Map([
  // UNSPECIFIED reads as NORMAL (the contract says so).
  [NotificationPriority.UNSPECIFIED, "normal"],
  [NotificationPriority.NORMAL, "normal"],
  [NotificationPriority.HIGH, "high"],
  [NotificationPriority.CRITICAL, "critical"],
]);
const priorityToProto: Record<PriorityName, NotificationPriority> = {
  normal: NotificationPriority.NORMAL,
  high: NotificationPriority.HIGH,
  critical: NotificationPriority.CRITICAL,
};

const stateToProto: Record<DeliveryState, ChannelDelivery_State> = {
  pending: ChannelDelivery_State.PENDING,
  deferred: ChannelDelivery_State.DEFERRED,
  delivered: ChannelDelivery_State.DELIVERED,
  failed: ChannelDelivery_State.FAILED,
  suppressed: ChannelDelivery_State.SUPPRESSED,
};

/** Categories of a request filter (validated: defined, not UNSPECIFIED). */
export function categoriesFromProto(categories: readonly NotificationCategory[]): CategoryName[] {
  return categories.map((c) => categoryFromProto.get(c)).filter((c): c is CategoryName => c !== undefined);
}

/** A stored notification as the API shows it. */
export function notificationToProto(n: StoredNotification): Notification {
  return create(NotificationSchema, {
    name: `patients/${n.recipientId}/notifications/${n.id}`,
    category: categoryToProto.get(n.category) ?? NotificationCategory.UNSPECIFIED,
    priority: priorityToProto[n.priority],
    title: n.title,
    body: n.body,
    subjectResource: n.subjectResource ?? "",
    aboutPatient: n.aboutPatientId === undefined ? "" : `patients/${n.aboutPatientId}`,
    cursor: encodeCursor(n.sequence),
    deliveries: n.deliveries.map((d) => ({
      channel: channelToProto.get(d.channel) ?? NotificationChannel.UNSPECIFIED,
      state: stateToProto[d.state],
      updateTime: timestampFromDate(d.updateTime),
    })),
    createTime: timestampFromDate(n.createTime),
    readTime: n.readTime === undefined ? undefined : timestampFromDate(n.readTime),
    expireTime: n.expireTime === undefined ? undefined : timestampFromDate(n.expireTime),
  });
}
