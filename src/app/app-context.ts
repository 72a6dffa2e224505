import type { Config } from "../config/config.ts";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import type { ServiceRegistration } from "../rpc/call-pipeline.ts";
import type { Clock } from "../shared/clock.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import type { RunningSiblings } from "../siblings/start-siblings.ts";
import type { Security } from "./security.ts";

/** What every bounded context's start-up may use: opened once by `startApp`. */
export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly orm: Orm;
  readonly clock: Clock;
  readonly siblings: RunningSiblings;
  readonly security: Security;
  readonly patients: PatientRepository;
  /** Field encryption: the envelope cipher (KEK ring) and the email blind index, loaded once. */
  readonly crypto: FieldCrypto;
}

/** A started bounded context: the services it serves, and how to stop its background work. */
export interface StartedPart {
  readonly registrations: readonly ServiceRegistration[];
  /** Stops timers, subscriptions and connections the part opened (after the server stopped). */
  close(): Promise<void>;
}
