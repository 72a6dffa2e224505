import { describeConfig } from "./config/config-summary.ts";
import { ConfigError, loadConfig } from "./config/config.ts";
import { startApp } from "./app/start-app.ts";
import { createLogger } from "./observability/logger.ts";

/**
 * Entry point: `loadConfig -> startApp (dependencies, server, listen)`, then close in
 * reverse order on SIGTERM or SIGINT.
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  logger.info({ config: describeConfig(config) }, "starting patient service");
  const app = await startApp(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    app.stop().then(
      () => {
        logger.info("patient service stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`patient service failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
