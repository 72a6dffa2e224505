import type { Config, SiblingUrls } from "../config/config.ts";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import { type RunningSimulators, startSimulators } from "../simulators/start-simulators.ts";
import {
  createSiblingClients,
  type SiblingClientOptions,
  type SiblingClients,
  type SiblingEndpoints,
} from "./sibling-clients.ts";

/** The sibling services as the Patient Service sees them. */
export interface RunningSiblings {
  /** Where each sibling answers: its configured URL, or the embedded simulators'. */
  readonly endpoints: SiblingEndpoints;
  /** Clients for them. */
  readonly clients: SiblingClients;
  /** The embedded simulators, when any sibling has no URL (tests drive and inspect them). */
  readonly simulators: RunningSimulators | undefined;
  /** Closes the clients, then stops the simulators. */
  stop(): Promise<void>;
}

/** Replaceable parts, for tests. */
export interface StartSiblingsOptions {
  /** The simulators' clock; pass the app's so hold ttls and join windows agree with it. */
  readonly clock?: Clock;
  /** Makes the simulators' ids reproducible. */
  readonly seed?: number;
  readonly clients?: SiblingClientOptions;
}

/**
 * Resolves where the sibling services are. A configured URL always wins; with
 * SIMULATORS=embedded the siblings without one are served by in-memory simulators on
 * a free port of 127.0.0.1 (one port for all four), which is logged loudly because
 * nothing they hold is real. With SIMULATORS=off every URL must be configured
 * (`loadConfig` already insists).
 */
export async function startSiblings(
  config: Pick<Config, "simulators" | "siblings">,
  logger: Logger,
  options: StartSiblingsOptions = {},
): Promise<RunningSiblings> {
  const missing = (Object.keys(config.siblings) as Array<keyof SiblingUrls>).filter(
    (sibling) => config.siblings[sibling] === undefined,
  );
  if (missing.length > 0 && config.simulators === "off") {
    throw new Error(`no URL for the ${missing.join(", ")} service and SIMULATORS=off`);
  }
  const simulators =
    missing.length > 0 ? await startSimulators({ clock: options.clock, seed: options.seed, logger }) : undefined;
  const urlOf = (sibling: keyof SiblingUrls): string =>
    config.siblings[sibling] ?? (simulators as RunningSimulators).url;
  const endpoints: SiblingEndpoints = {
    doctor: urlOf("doctor"),
    paramedic: urlOf("paramedic"),
    xray: urlOf("xray"),
    notification: urlOf("notification"),
  };
  if (simulators) {
    logger.warn(
      { simulated: missing, url: simulators.url },
      "SIBLING SIMULATORS: in-memory stand-ins for the services without a URL. For development and tests only; nothing they hold or send is real.",
    );
  }
  const clients = createSiblingClients(endpoints, options.clients);
  return {
    endpoints,
    clients,
    simulators,
    async stop() {
      clients.close();
      await simulators?.stop();
    },
  };
}
