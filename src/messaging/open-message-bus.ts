import type { Logger } from "../observability/logger.ts";
import { InProcessMessageBus } from "./in-process-message-bus.ts";
import type { MessageBus } from "./message-bus.ts";
import { NatsMessageBus, type NatsSettings } from "./nats-message-bus.ts";

/**
 * The bus the service uses: NATS when NATS_URL is set (replicas share it), the
 * in-process stand-in otherwise (the embedded default: one process).
 */
export async function openMessageBus(
  settings: Omit<NatsSettings, "url"> & { readonly url: string | undefined },
  logger: Logger,
): Promise<MessageBus> {
  if (settings.url === undefined) return new InProcessMessageBus(logger);
  return NatsMessageBus.open({ ...settings, url: settings.url }, logger);
}
