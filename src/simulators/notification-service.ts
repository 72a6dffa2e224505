import type { NotificationDeliveryService } from "../../gen/telemed/notification/v1/notification_service_pb.js";
import type { ServiceHandlers } from "./grpc-js-service.ts";
import { addressOf, type NotificationSimulator } from "./notification-simulator.ts";
import { pageOf } from "./paging.ts";

/** The NotificationDeliveryService RPCs over a NotificationSimulator. */
export function notificationHandlers(
  notification: NotificationSimulator,
): ServiceHandlers<typeof NotificationDeliveryService> {
  return {
    deliver(request) {
      return { delivery: notification.deliver(request.delivery!, request.idempotencyKey) };
    },

    getDelivery(request) {
      return { delivery: notification.get(request.name) };
    },

    listDeliveries(request) {
      const address = addressOf(request.recipient).toLowerCase();
      const matches = notification
        .list()
        .filter(
          (d) =>
            (request.idempotencyKey === "" || d.idempotencyKey === request.idempotencyKey) &&
            (address === "" || addressOf(d.recipient).toLowerCase() === address) &&
            (request.channel === 0 || d.channel === request.channel),
        );
      const page = pageOf(matches, request, {
        scope: JSON.stringify(["deliveries", request.idempotencyKey, address, request.channel]),
        defaultSize: 25,
        maxSize: 100,
        cursorOf: (d) => d.name,
        isAfter: (d, cursor) => d.name < cursor, // names sort by acceptance; newest first
      });
      return { deliveries: page.items, nextPageToken: page.nextPageToken };
    },
  };
}
