import { createLogger } from "../observability/logger.ts";
import { startSimulators } from "./start-simulators.ts";

/**
 * Standalone entry: `node src/simulators/main.ts` serves the four sibling simulators
 * on SIMULATORS_PORT (9090) and SIMULATORS_HOST (0.0.0.0, so that other containers
 * reach it, as in docker-compose.yml). SIMULATORS_SEED makes ids reproducible.
 * In-memory only: a restart forgets every hold, appointment and delivery.
 */
async function main(): Promise<void> {
  const port = integer("SIMULATORS_PORT", 9090, 0, 65535);
  const seed = process.env.SIMULATORS_SEED === undefined ? undefined : integer("SIMULATORS_SEED", 0, 0, 2 ** 31 - 1);
  const host = process.env.SIMULATORS_HOST ?? "0.0.0.0";
  const logger = createLogger(process.env.LOG_LEVEL ?? "info").child({ component: "sibling-simulators" });
  const simulators = await startSimulators({ port, host, seed, logger });
  logger.info({ url: simulators.url, host, port: simulators.port }, "sibling simulators listening");
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping sibling simulators");
    simulators.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function integer(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    process.stderr.write(`Invalid configuration:\n  - ${name} must be an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return value;
}

main().catch((error: unknown) => {
  process.stderr.write(
    `sibling simulators failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
