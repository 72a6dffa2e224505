import type { Client } from "@connectrpc/connect";
import { Channel, Priority } from "../../gen/telemed/notification/v1/notification_pb.js";
import type { NotificationDeliveryService } from "../../gen/telemed/notification/v1/notification_service_pb.js";
import type { Logger } from "../observability/logger.ts";
import type { Mailer } from "./auth-deps.ts";

/**
 * Account emails (verification, password reset) through the Notification Service.
 * A failed hand-over is logged and swallowed: the account change stands, and the
 * patient can ask for the email again; the log names no address.
 */
export function notificationMailer(client: Client<typeof NotificationDeliveryService>, logger: Logger): Mailer {
  return {
    async send(message) {
      try {
        await client.deliver({
          delivery: {
            channel: Channel.EMAIL,
            recipient: { address: { case: "email", value: message.to } },
            content: { subject: message.subject, textBody: message.text },
            priority: Priority.HIGH,
            category: "account_security",
          },
          idempotencyKey: message.idempotencyKey,
        });
      } catch (error) {
        logger.warn(
          { err: { type: error instanceof Error ? error.constructor.name : typeof error } },
          "account email not handed over",
        );
      }
    },
  };
}
