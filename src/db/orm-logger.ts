import type { LogContext, LoggerNamespace, Logger as OrmLogger } from "@mikro-orm/core";
import type { Logger } from "../observability/logger.ts";

/**
 * MikroORM's log output, as pino records at the right level. Two things differ from
 * MikroORM's default logger on purpose:
 * - SQL is never written. MikroORM inlines parameter values into the SQL text, so a
 *   logged query is a logged patient record. Slow queries (if `slowQueryThreshold` is
 *   ever set) are reported with their duration only.
 * - Warnings and errors are written whatever the debug mode. The default logger drops
 *   them unless debug logging is on, which silences pool errors such as "PostgreSQL
 *   connection error" in production.
 */
export class PinoOrmLogger implements OrmLogger {
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  log(namespace: LoggerNamespace | string, message: string, context?: LogContext): void {
    const record = { namespace, label: context?.label };
    if (context?.level === "error") this.#log.error(record, message);
    else if (context?.level === "warning" || namespace === "deprecated") this.#log.warn(record, message);
    else if (context?.enabled === true)
      this.#log.info(record, message); // the migrator's progress
    else this.#log.debug(record, message);
  }

  error(namespace: LoggerNamespace | string, message: string, context?: LogContext): void {
    this.log(namespace, message, { ...context, level: "error" });
  }

  warn(namespace: LoggerNamespace | string, message: string, context?: LogContext): void {
    this.log(namespace, message, { ...context, level: "warning" });
  }

  logQuery(context: LogContext): void {
    if (context.namespace === "slow-query") {
      this.#log.warn(
        { namespace: "slow-query", tookMs: context.took, rows: context.results ?? context.affected },
        "slow query",
      );
    }
  }

  setDebugMode(): void {
    // Query logging stays off whatever is asked: see the class comment.
  }

  isEnabled(namespace: LoggerNamespace, context?: LogContext): boolean {
    return context?.enabled ?? (namespace !== "query" && namespace !== "query-params");
  }
}
