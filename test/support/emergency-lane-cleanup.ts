import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

/**
 * Deletes the emergency stream of a test app's lane prefix (its consumers go with it),
 * so test runs leave nothing on the shared NATS server. Harmless when there is none.
 */
export async function deleteEmergencyStream(natsUrl: string | undefined, prefix: string): Promise<void> {
  if (natsUrl === undefined || prefix === "") return;
  const nc = await connect({ servers: natsUrl, timeout: 2000 }).catch(() => undefined);
  if (nc === undefined) return;
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`${prefix}EMERGENCY`).catch(() => false);
  } finally {
    await nc.close();
  }
}
