import { readFile } from "node:fs/promises";
import type { Config } from "../config/config.ts";
import { startEmbeddedPostgres } from "../db/embedded-postgres.ts";
import { migrateUp } from "../db/migrate.ts";
import { createOrm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import { checkBlindIndexKey } from "../patients/contact-encryption-step.ts";
import { PatientSealer } from "../patients/patient-contact.ts";
import { PatientRepository } from "../patients/patient-repository.ts";
import { createServer, type PatientServer } from "../server/create-server.ts";
import { type RunningSiblings, startSiblings } from "../siblings/start-siblings.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { loadFieldCrypto } from "../shared/crypto/field-crypto.ts";
import type { AppContext } from "./app-context.ts";
import { type BillingPart, startBilling } from "./billing-part.ts";
import { startConsultations } from "./consultations-part.ts";
import { routineUnderPrecedence, startEmergencies } from "./emergencies-part.ts";
import { startInsights } from "./insights-part.ts";
import { startNotifications } from "./notifications-part.ts";
import { startRecords } from "./records-part.ts";
import type { Notifier } from "../notifications/notifier.ts";
import { serviceRegistrations } from "./registrations.ts";
import { type Operator, startSecurity } from "./security.ts";
import { migrationSteps } from "./migration-steps.ts";

/** A started service: where it listens, and how to stop it. */
export interface RunningApp {
  readonly port: number;
  readonly server: PatientServer;
  /** The sibling services' clients, and their simulators in embedded mode (tests drive them). */
  readonly siblings: RunningSiblings;
  /** Operator actions (creating staff accounts), for scripts and tests. */
  readonly operator: Operator;
  /** What other contexts use to notify patients; tests produce notifications with it. */
  readonly notifier: Notifier;
  /** Derives every patient's health insights once; tests call it after moving the clock. */
  scanInsights(): Promise<void>;
  /** Billing's test handles: the embedded UPI provider simulator, a polling round, a roll-up of charges. */
  readonly billing: Pick<BillingPart, "providerSimulator" | "pollPayments" | "rollUpInvoices">;
  /** Drains the server, then closes what it used, in reverse order of opening. */
  stop(): Promise<void>;
}

/** Replaceable parts, for tests. */
export interface AppOverrides {
  readonly clock?: Clock;
}

type Closer = () => Promise<unknown>;

/**
 * Opens everything the service needs (the embedded PostgreSQL when no DATABASE_URL is
 * set), applies migrations, builds the server and listens. If any step fails, what was
 * already opened is closed again.
 */
export async function startApp(config: Config, logger: Logger, overrides: AppOverrides = {}): Promise<RunningApp> {
  const closers: Closer[] = [];
  try {
    const databaseUrl = config.databaseUrl ?? (await embeddedDatabase(config, logger, closers));
    const orm = await createOrm(
      { url: databaseUrl, poolMax: config.dbPoolMax, connectTimeoutMs: config.dbConnectTimeoutMs },
      logger,
    );
    closers.push(() => orm.close());
    // Keys first: the migration of issue #6 seals plaintext contact fields with them.
    const crypto = await loadFieldCrypto(config.records);
    const applied = await migrateUp(orm, migrationSteps(crypto, config, logger));
    if (applied.length > 0) logger.info({ migrations: applied }, "migrations applied");
    await checkBlindIndexKey(orm, crypto);
    const clock = overrides.clock ?? systemClock;
    const siblings = await startSiblings(config, logger, { clock });
    closers.push(() => siblings.stop());

    const patients = new PatientRepository(orm, new PatientSealer(crypto, logger.child({ component: "patients" })));
    const security = await startSecurity(config, orm, logger, clock, siblings.clients, patients, crypto);
    closers.push(() => security.close());

    const context: AppContext = { config, logger, orm, clock, siblings, security, patients, crypto };
    const notifications = await startNotifications(context);
    closers.push(() => notifications.close());
    const consultations = await startConsultations(context, notifications);
    closers.push(() => consultations.close());
    const emergencies = await startEmergencies(context, notifications);
    closers.push(() => emergencies.close());
    const records = await startRecords(context);
    closers.push(() => records.close());
    const insights = await startInsights(context, notifications);
    closers.push(() => insights.close());
    const billing = await startBilling(context, notifications);
    closers.push(() => billing.close());

    const server = createServer({
      // Routine calls wait while emergency work runs (functional safety 3, precedence-gate.ts).
      registrations: routineUnderPrecedence(
        serviceRegistrations({ patients, clock, security, orm, config }, [
          ...consultations.registrations,
          ...notifications.registrations,
          ...emergencies.registrations,
          ...records.registrations,
          ...insights.registrations,
          ...billing.registrations,
        ]),
        emergencies.precedence,
      ),
      access: security.access,
      audit: security.audit,
      jwks: security.jwks,
      logger,
      readMaxBytes: config.readMaxBytes,
      corsAllowedOrigins: config.corsAllowedOrigins,
      tls: config.tls && { cert: await readFile(config.tls.certFile), key: await readFile(config.tls.keyFile) },
      collectProcessMetrics: true,
      plainRoutes: billing.plainRoutes,
    });
    const port = await server.listen(config.port, config.host);
    closers.push(() => server.close(config.shutdownGraceMs));
    billing.listening(port);
    logger.info(
      { port, host: config.host, tls: config.tls !== undefined, pid: process.pid },
      "patient service listening",
    );
    return {
      port,
      server,
      siblings,
      operator: {
        // A doctor's account is linked to its Doctor Service doctor (consultations own the link).
        async createStaffAccount(fields) {
          const accountId = await security.operator.createStaffAccount(fields);
          if (fields.role === "doctor" && fields.doctorId !== undefined) {
            await consultations.linkDoctorAccount(accountId, fields.doctorId);
          }
          return accountId;
        },
      },
      notifier: notifications.notifier,
      scanInsights: () => insights.scanOnce(),
      billing,
      stop: () => closeAll(closers, logger),
    };
  } catch (error) {
    await closeAll(closers, logger);
    throw error;
  }
}

async function embeddedDatabase(config: Config, logger: Logger, closers: Closer[]): Promise<string> {
  logger.warn(
    { dataDir: config.dataDir },
    "EMBEDDED MODE: no DATABASE_URL, starting a local PostgreSQL and in-process stand-ins. For development only, never for real patient data.",
  );
  const postgres = await startEmbeddedPostgres({ dataDir: config.dataDir });
  closers.push(() => postgres.stop());
  return postgres.url;
}

/** Closes in reverse order of opening; one part failing to close does not keep the others open. */
async function closeAll(closers: Closer[], logger: Logger): Promise<void> {
  while (closers.length > 0) {
    const close = closers.pop() as Closer;
    await close().catch((error: unknown) =>
      logger.warn(
        { err: { type: error instanceof Error ? error.constructor.name : typeof error } },
        "a part failed to close",
      ),
    );
  }
}
