/**
 * `npm run account:create -- --role admin --email ops@example.com`: creates a staff
 * account (doctor, paramedic or admin). The password is read from the environment
 * variable ACCOUNT_PASSWORD (never from the command line, where `ps` and shell
 * history would keep it). Staff enrol in MFA at their first log-in. `--doctor-id` links a
 * doctor's account to its Doctor Service doctor (`doctors/{id}` there): the consultations
 * with that doctor are the ones the account may start, complete and join. With
 * DATABASE_URL unset it uses the embedded PostgreSQL in DATA_DIR.
 *
 * Exit codes: 0 created, 1 failed, 2 bad arguments or configuration.
 */
import { parseArgs } from "node:util";
import { AccountEmails } from "../src/auth/account-email.ts";
import { AccountStore } from "../src/auth/account-store.ts";
import { passwordsWith } from "../src/auth/auth-parts.ts";
import { createStaffAccount } from "../src/auth/staff-accounts.ts";
import { linkDoctorAccount } from "../src/consultations/doctor-accounts.ts";
import { migrateUp } from "../src/db/migrate.ts";
import { createLogger } from "../src/observability/logger.ts";
import { loadFieldCrypto } from "../src/shared/crypto/field-crypto.ts";
import { DomainError } from "../src/shared/domain-errors.ts";
import { scriptConfig, withDatabase } from "./script-database.ts";
import { migrationSteps } from "../src/app/migration-steps.ts";

const roles = ["doctor", "paramedic", "admin"] as const;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { role: { type: "string" }, email: { type: "string" }, "doctor-id": { type: "string" } },
  });
  const role = roles.find((r) => r === values.role);
  const password = process.env.ACCOUNT_PASSWORD ?? "";
  if (role === undefined || !values.email || password === "") {
    process.stderr.write(
      "usage: ACCOUNT_PASSWORD=… npm run account:create -- --role doctor|paramedic|admin --email someone@example.com [--doctor-id <Doctor Service id>]\n",
    );
    return 2;
  }
  const email = values.email;
  const config = scriptConfig();
  if (config === undefined) return 2;
  // The service's keys: the account's email is sealed and indexed like the service does it.
  const crypto = await loadFieldCrypto(config.records);
  const logger = createLogger(config.logLevel);
  return withDatabase(config, logger, async (orm) => {
    await migrateUp(orm, migrationSteps(crypto, config, logger));
    try {
      const account = await createStaffAccount(
        new AccountStore(() => orm.em.fork(), new AccountEmails(crypto)),
        passwordsWith(config.auth.passwordHashCost),
        { email, role, password },
        new Date(),
      );
      const doctorId = values["doctor-id"];
      if (role === "doctor" && doctorId !== undefined) {
        // The doctor acts on the consultations booked with this Doctor Service doctor.
        await linkDoctorAccount(orm.em.fork(), account.id, doctorId, new Date());
      }
      process.stdout.write(`created accounts/${account.id} (${role})\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const details = error.violations.map((v) => `  - ${v.description}`).join("\n");
      process.stderr.write(`${error.message}\n${details}\n`);
      return 1;
    }
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    // Not the message: a database error's carries the SQL with its values (the email and the password hash).
    const code = (error as { code?: unknown } | undefined)?.code;
    const kind = error instanceof Error ? error.constructor.name : typeof error;
    process.stderr.write(`account:create failed: ${kind}${typeof code === "string" ? ` ${code}` : ""}\n`);
    process.exit(1);
  },
);
