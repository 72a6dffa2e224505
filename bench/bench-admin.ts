import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { randomBytes } from "node:crypto";
import { AuthService } from "../gen/telemed/patient/v1/auth_service_pb.js";
import { AccountStore } from "../src/auth/account-store.ts";
import { passwordsWith } from "../src/auth/auth-parts.ts";
import { createStaffAccount } from "../src/auth/staff-accounts.ts";
import { totpCodeAt } from "../src/auth/totp.ts";
import { loadConfig } from "../src/config/config.ts";
import { createOrm } from "../src/db/orm.ts";
import type { BenchContext } from "./bench-context.ts";

/**
 * The access token of the run's admin, the caller of every service target. Made once
 * per run, against the first service child that asks: the account is created the
 * operator's way (`createStaffAccount` on the bench database, as `npm run
 * account:create` does), then it logs in and enrols in MFA through AuthService, as
 * staff must before their token opens patient data. Every service child of the run
 * shares DATA_DIR (bench/run.ts), so they all verify this token with the same key.
 */
export async function ensureBenchAdmin(context: BenchContext, port: number): Promise<string> {
  context.adminToken ??= createAdmin(context, port);
  return context.adminToken;
}

async function createAdmin(context: BenchContext, port: number): Promise<string> {
  const email = `bench.${context.runId}.admin@example.com`;
  // A strong random password: the service's policy refuses weak and common ones.
  const password = randomBytes(18).toString("base64url");
  const config = loadConfig({ DATABASE_URL: context.database.url });
  const orm = await createOrm({ url: context.database.url, poolMax: 1 });
  try {
    await createStaffAccount(
      new AccountStore(() => orm.em.fork()),
      passwordsWith(config.auth.passwordHashCost),
      { email, role: "admin", password },
      new Date(),
    );
  } finally {
    await orm.close();
  }

  const baseUrl = `http://127.0.0.1:${port}`;
  const loggedIn = await authClient(baseUrl).logIn({ email, password });
  if (loggedIn.outcome.case !== "tokens") {
    throw new Error(`the bench admin's first log-in answered ${loggedIn.outcome.case ?? "nothing"}, not tokens`);
  }
  // The first token is limited (MFA enrolment only); confirming the enrolment gives full-scope tokens.
  const limited = authClient(baseUrl, loggedIn.outcome.value.accessToken);
  const { enrollment } = await limited.startMfaEnrollment({});
  if (enrollment === undefined || enrollment.secret === "") throw new Error("MFA enrolment gave no secret");
  const confirmed = await limited.confirmMfaEnrollment({ totpCode: totpCodeAt(enrollment.secret, new Date()) });
  const accessToken = confirmed.tokens?.accessToken;
  if (!accessToken) throw new Error("confirming MFA enrolment gave no access token");
  return accessToken;
}

function authClient(baseUrl: string, accessToken?: string) {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${accessToken}`);
    return next(request);
  };
  return createClient(
    AuthService,
    createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: accessToken === undefined ? [] : [bearer] }),
  );
}
