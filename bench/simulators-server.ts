import { createLogger } from "../src/observability/logger.ts";
import { startSimulators } from "../src/simulators/start-simulators.ts";
import { failChild, sendToParent, serveParent } from "./child-ipc.ts";

/**
 * Child process: the sibling services' simulators (Doctor, Paramedic, X-ray,
 * Notification) on their own, as `node src/simulators/main.ts` serves them, on a free
 * port of 127.0.0.1. A booking target points the service child at it, so the CPU the
 * service child spends is the Patient Service's alone, as in production, where the
 * siblings are other teams' deployments.
 */
async function main(): Promise<void> {
  const logger = createLogger("error").child({ component: "sibling-simulators" });
  const simulators = await startSimulators({ port: 0, host: "127.0.0.1", logger });
  serveParent(
    () => ({ ok: 0, failed: 0 }),
    () => simulators.stop(),
  );
  sendToParent({ type: "ready", port: simulators.port });
}

main().catch(failChild);
