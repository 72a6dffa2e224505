import type { AccountRole } from "./account-entities.ts";
import type { Account, AccountStore } from "./account-store.ts";
import type { Passwords } from "./auth-deps.ts";

/**
 * Creates a doctor, paramedic or admin account (an operator's task: `npm run
 * account:create`). Staff do not sign up; their email counts as verified, and they
 * too must enrol in MFA at their first log-in before their token opens anything.
 */
export async function createStaffAccount(
  accounts: AccountStore,
  passwords: Passwords,
  fields: { email: string; role: Exclude<AccountRole, "patient">; password: string },
  now: Date,
): Promise<Account> {
  passwords.requireStrong(fields.password, { email: fields.email, givenName: "", familyName: "" }, "password");
  const created = await accounts.create(
    accounts.entityManager(),
    {
      email: fields.email,
      passwordHash: await passwords.hash(fields.password),
      role: fields.role,
      patientId: null,
      requestId: null,
      emailVerified: true,
    },
    now,
  );
  if (created === "replayed") throw new Error("a staff account has no request id to replay");
  return created;
}
