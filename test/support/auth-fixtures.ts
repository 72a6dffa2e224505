import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { fromJson } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { totpCodeAt } from "../../src/auth/totp.ts";
import { newPatientJson } from "./patient-fixtures.ts";
import type { TestApp } from "./test-app.ts";

/** A logged-in caller of a test app, with what a test may need to act as them again. */
export interface TestSession {
  readonly email: string;
  readonly password: string;
  readonly accessToken: string;
  readonly refreshToken: string;
  /** `accounts/{id}`. */
  readonly account: string;
  /** `patients/{id}` for a patient; empty for staff. */
  readonly patient: string;
  /** The bare patient id; empty for staff. */
  readonly patientId: string;
  readonly totpSecret: string;
  readonly recoveryCodes: readonly string[];
  /** Headers that authenticate a fetch() call. */
  readonly headers: Record<string, string>;
  /** An interceptor that authenticates a Connect client. */
  readonly interceptor: Interceptor;
}

export const testPassword = "Vq3-harbour-lantern-91x";

/** Bearer authentication for Connect clients. */
export function bearer(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

export function authClient(t: TestApp, token?: string): Client<typeof AuthService> {
  return createClient(
    AuthService,
    createConnectTransport({
      baseUrl: t.baseUrl,
      httpVersion: "1.1",
      interceptors: token === undefined ? [] : [bearer(token)],
    }),
  );
}

/** A TOTP code of `secret` for a time step after every one used so far in this process. */
export function nextTotp(secret: string): string {
  const used = lastStep.get(secret) ?? Math.floor(Date.now() / 30_000) - 1;
  // ±1 step is accepted, so the next step's code works now, and then the one after… up to one ahead.
  const step = Math.max(used + 1, Math.floor(Date.now() / 30_000));
  lastStep.set(secret, step);
  return totpCodeAt(secret, new Date(step * 30_000 + 1000));
}
const lastStep = new Map<string, number>();

/**
 * Reads the code in the email the notification simulator was asked to send to
 * `email`: the `index`th message to that address (0: the first, the sign-up email).
 */
export async function verificationCode(t: TestApp, email: string, index = 0): Promise<string> {
  const notifications = t.app.siblings.simulators?.notification;
  if (notifications === undefined) throw new Error("the test app has no notification simulator");
  const message = await notifications.waitForMessageTo(email, { after: index, timeoutMs: 5000 });
  const code = /\b(ev|pr)_[A-Za-z0-9_-]{43}\b/.exec(message.textBody)?.[0];
  if (code === undefined) throw new Error("no code in the email");
  return code;
}

/**
 * Signs a patient up through the API, verifies the email from the simulator's
 * outbox, logs in and (by default) enrols in MFA: the token returned opens health data.
 */
export async function signUpPatient(
  t: TestApp,
  options: { patient?: Record<string, unknown>; enrollMfa?: boolean } = {},
): Promise<TestSession> {
  const email = `pat.${randomUUID()}@example.com`;
  const patientJson = newPatientJson({
    ...options.patient,
    contact: { ...(newPatientJson().contact as object), email, ...((options.patient?.contact as object) ?? {}) },
  });
  const anonymous = authClient(t);
  const signedUp = await anonymous.signUp({
    patient: fromJson(PatientSchema, patientJson as never),
    password: testPassword,
    requestId: randomUUID(),
    acceptedTermsVersion: "2026-11",
  });
  await anonymous.verifyEmail({ token: await verificationCode(t, email) });
  return logInAndEnroll(t, email, testPassword, options.enrollMfa ?? true, signedUp.patient);
}

/** Creates a staff account the operator's way (a doctor linked to `doctorId`), then logs in and enrols in MFA. */
export async function staffSession(
  t: TestApp,
  role: "doctor" | "paramedic" | "admin",
  options: { doctorId?: string } = {},
): Promise<TestSession> {
  const email = `${role}.${randomUUID()}@example.com`;
  await t.app.operator.createStaffAccount({ email, role, password: testPassword, doctorId: options.doctorId });
  return logInAndEnroll(t, email, testPassword, true, "");
}

async function logInAndEnroll(
  t: TestApp,
  email: string,
  password: string,
  enrollMfa: boolean,
  patient: string,
): Promise<TestSession> {
  const loggedIn = await authClient(t).logIn({ email, password });
  if (loggedIn.outcome.case !== "tokens") throw new Error("expected tokens from a first log-in");
  let tokens = loggedIn.outcome.value;
  let totpSecret = "";
  let recoveryCodes: string[] = [];
  if (enrollMfa) {
    const limited = authClient(t, tokens.accessToken);
    const { enrollment } = await limited.startMfaEnrollment({});
    totpSecret = enrollment?.secret ?? "";
    const confirmed = await limited.confirmMfaEnrollment({ totpCode: nextTotp(totpSecret) });
    tokens = confirmed.tokens ?? tokens;
    recoveryCodes = confirmed.recoveryCodes;
  }
  return {
    email,
    password,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    account: tokens.account,
    patient: patient || tokens.patient,
    patientId: (patient || tokens.patient).replace(/^patients\//, ""),
    totpSecret,
    recoveryCodes,
    headers: { authorization: `Bearer ${tokens.accessToken}` },
    interceptor: bearer(tokens.accessToken),
  };
}
