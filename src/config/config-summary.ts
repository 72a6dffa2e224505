import type { Config } from "./config.ts";

/**
 * A copy of the configuration that is safe to log at start-up: URLs keep their
 * scheme, host, port and path but lose user names, passwords and query strings
 * (where drivers take `?password=` or `?sslkey=`).
 */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    mode: config.mode,
    port: config.port,
    host: config.host,
    tls: config.tls !== undefined,
    logLevel: config.logLevel,
    databaseUrl: redactUrl(config.databaseUrl),
    dataDir: config.mode === "embedded" ? config.dataDir : undefined,
    dbPoolMax: config.dbPoolMax,
    natsUrl: redactUrl(config.natsUrl) ?? "in-process",
    redisUrl: redactUrl(config.redisUrl) ?? "in-process",
    readMaxBytes: config.readMaxBytes,
    corsAllowedOrigins: config.corsAllowedOrigins,
    shutdownGraceMs: config.shutdownGraceMs,
    simulators: config.simulators,
    siblings: Object.fromEntries(
      Object.entries(config.siblings).map(([name, url]) => [name, redactUrl(url) ?? "simulator"]),
    ),
  };
}

/** `postgres://app:secret@db:5432/x?sslmode=require` becomes `postgres://db:5432/x`. */
export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    parsed.hash = "";
    return parsed.toString();
  } catch {
    return "[unparsable]";
  }
}
