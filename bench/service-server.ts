import { startApp } from "../src/app/start-app.ts";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/observability/logger.ts";
import { failChild, sendToParent, serveParent } from "./child-ipc.ts";

/**
 * Child process: the real Patient Service, started the way `npm start` starts it
 * (`startApp(loadConfig(env), logger)`) from the environment bench/run.ts sets
 * (DATABASE_URL of the bench database, PORT=0). Reports its port, and on request the
 * number of calls its metrics counted as `ok` and as anything else.
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await startApp(config, createLogger(config.logLevel));
  const counters = app.server.metrics.registry.getSingleMetric("rpc_server_handled_total");
  if (counters === undefined) throw new Error("the service has no rpc_server_handled_total metric");
  serveParent(
    async () => {
      let ok = 0;
      let failed = 0;
      for (const { labels, value } of (await counters.get()).values) {
        if (labels.code === "ok") ok += value;
        else failed += value;
      }
      return { ok, failed };
    },
    () => app.stop(),
  );
  sendToParent({ type: "ready", port: app.port });
}

main().catch(failChild);
