import { insuranceEncryptionStep } from "../billing/insurance-encryption-step.ts";
import type { Config } from "../config/config.ts";
import type { DataStep } from "../db/migrate.ts";
import type { Logger } from "../observability/logger.ts";
import { contactEncryptionStep } from "../patients/contact-encryption-step.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import { freeTextEncryptionSteps, lazySecretBox } from "./free-text-steps.ts";

/**
 * The work in code the committed migrations need between them (sealing columns that
 * were stored in clear: SQL cannot encrypt), in one list for the service's start-up,
 * `npm run migrate` and `npm run account:create`, so all three migrate alike.
 */
export function migrationSteps(crypto: FieldCrypto, config: Config, logger: Logger): DataStep[] {
  return [
    contactEncryptionStep(crypto, logger),
    ...freeTextEncryptionSteps(crypto, config.auth, logger),
    // Issue #7 follow-up: the invoices' insurance, sealed like the payments' UPI ids.
    insuranceEncryptionStep(lazySecretBox(config.auth), logger),
  ];
}
