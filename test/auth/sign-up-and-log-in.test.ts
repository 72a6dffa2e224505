import { fromJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createLocalJWKSet, jwtVerify } from "jose";
import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import {
  authClient,
  bearer,
  nextTotp,
  signUpPatient,
  testPassword,
  verificationCode,
} from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

const serviceSecret = "s".repeat(40);
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    SERVICE_CLIENTS: `doctor-service=${createHash("sha256").update(serviceSecret).digest("hex")}`,
  });
});
afterAll(async () => {
  await t?.close();
});

function patients(token: string) {
  return createClient(
    PatientService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [bearer(token)] }),
  );
}

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("TST-PT001: sign-up and log-in", () => {
  it("TST-PT001-1 registers with valid credentials: the account is created unverified and a verification email is sent", async () => {
    const email = `new.${randomUUID()}@example.com`;
    const response = await authClient(t).signUp({
      patient: fromJson(PatientSchema, newPatientJson({ contact: { email, phone: "+919812345678" } }) as never),
      password: testPassword,
      requestId: randomUUID(),
      acceptedTermsVersion: "2026-11",
    });
    expect(response.account?.emailVerified).toBe(false);
    expect(response.account?.email).toBe(email);
    expect(response.patient).toMatch(/^patients\//);
    const message = await t.app.siblings.simulators?.notification.waitForMessageTo(email, {
      after: 0,
      timeoutMs: 5000,
    });
    expect(message?.subject).toMatch(/confirm your email/i);
    // Not verified yet: the right password gets a clear FAILED_PRECONDITION, no token.
    expect(await codeOf(authClient(t).logIn({ email, password: testPassword }))).toBe(Code.FailedPrecondition);
    await authClient(t).verifyEmail({ token: await verificationCode(t, email) });
    const loggedIn = await authClient(t).logIn({ email, password: testPassword });
    expect(loggedIn.outcome.case).toBe("tokens");
  });

  it("refuses a weak password with a field violation, and a second sign-up with the same email", async () => {
    const signUp = (password: string, email = `w.${randomUUID()}@example.com`) =>
      authClient(t).signUp({
        patient: fromJson(PatientSchema, newPatientJson({ contact: { email, phone: "+919812345678" } }) as never),
        password,
        requestId: randomUUID(),
        acceptedTermsVersion: "2026-11",
      });
    const weak = await signUp("password1234").catch((error: unknown) => ConnectError.from(error));
    expect(weak).toBeInstanceOf(ConnectError);
    expect((weak as ConnectError).code).toBe(Code.InvalidArgument);
    const session = await signUpPatient(t);
    expect(await codeOf(signUp(testPassword, session.email))).toBe(Code.AlreadyExists);
  });

  it("TST-PT001-2 logs in with valid credentials and reaches the patient's own profile after MFA", async () => {
    const session = await signUpPatient(t);
    const { patient } = await patients(session.accessToken).getPatient({ name: session.patient });
    expect(patient?.contact?.email).toBe(session.email);
  });

  it("TST-PT001-3 an incorrect password and an unknown email get the same UNAUTHENTICATED answer", async () => {
    const session = await signUpPatient(t);
    const wrong = await authClient(t)
      .logIn({ email: session.email, password: "not the password at all" })
      .catch((error: unknown) => ConnectError.from(error));
    const unknown = await authClient(t)
      .logIn({ email: `nobody.${randomUUID()}@example.com`, password: "not the password at all" })
      .catch((error: unknown) => ConnectError.from(error));
    expect(wrong).toBeInstanceOf(ConnectError);
    expect(unknown).toBeInstanceOf(ConnectError);
    expect((wrong as ConnectError).code).toBe(Code.Unauthenticated);
    expect((unknown as ConnectError).rawMessage).toBe((wrong as ConnectError).rawMessage);
    expect((wrong as ConnectError).rawMessage).not.toContain(session.email);
  });

  it("TST-PT001-4 after the password, a patient with MFA gets only a challenge; the code opens the session once", async () => {
    const session = await signUpPatient(t);
    const loggedIn = await authClient(t).logIn({ email: session.email, password: session.password });
    expect(loggedIn.outcome.case).toBe("mfaChallenge");
    const challenge = loggedIn.outcome.case === "mfaChallenge" ? loggedIn.outcome.value.challengeToken : "";
    const code = nextTotp(session.totpSecret);
    const verified = await authClient(t).verifyMfa({
      challengeToken: challenge,
      code: { case: "totpCode", value: code },
    });
    expect(
      (await patients(verified.tokens?.accessToken ?? "").getPatient({ name: session.patient })).patient,
    ).toBeDefined();
    // The same code again, on a new challenge: refused (a TOTP code works once).
    const again = await authClient(t).logIn({ email: session.email, password: session.password });
    const second = again.outcome.case === "mfaChallenge" ? again.outcome.value.challengeToken : "";
    expect(
      await codeOf(authClient(t).verifyMfa({ challengeToken: second, code: { case: "totpCode", value: code } })),
    ).toBe(Code.Unauthenticated);
    // A recovery code works, once.
    const recovery = session.recoveryCodes[0] as string;
    const byRecovery = await authClient(t).verifyMfa({
      challengeToken: second,
      code: { case: "recoveryCode", value: recovery },
    });
    expect(byRecovery.recoveryCodesRemaining).toBe(session.recoveryCodes.length - 1);
    const third = await authClient(t).logIn({ email: session.email, password: session.password });
    const thirdToken = third.outcome.case === "mfaChallenge" ? third.outcome.value.challengeToken : "";
    expect(
      await codeOf(
        authClient(t).verifyMfa({ challengeToken: thirdToken, code: { case: "recoveryCode", value: recovery } }),
      ),
    ).toBe(Code.Unauthenticated);
  });

  it("a patient without MFA is made to enrol before reaching health data", async () => {
    const session = await signUpPatient(t, { enrollMfa: false });
    const denied = await patients(session.accessToken)
      .getPatient({ name: session.patient })
      .catch((error: unknown) => ConnectError.from(error));
    expect((denied as ConnectError).code).toBe(Code.PermissionDenied);
    expect((denied as ConnectError).rawMessage).toMatch(/enrol/i);
    expect((await authClient(t, session.accessToken).getCurrentAccount({})).account?.mfaEnrolled).toBe(false);
  });
});

describe("tokens, sessions and brute force", () => {
  it("rotates refresh tokens and revokes the whole session when a used one comes back", async () => {
    const session = await signUpPatient(t);
    const first = await authClient(t).refreshTokens({ refreshToken: session.refreshToken });
    const access = first.tokens?.accessToken ?? "";
    expect((await patients(access).getPatient({ name: session.patient })).patient).toBeDefined();
    expect(await codeOf(authClient(t).refreshTokens({ refreshToken: session.refreshToken }))).toBe(
      Code.Unauthenticated,
    );
    // Reuse detected: the newer tokens of that session stop working too.
    expect(await codeOf(patients(access).getPatient({ name: session.patient }))).toBe(Code.Unauthenticated);
    expect(await codeOf(authClient(t).refreshTokens({ refreshToken: first.tokens?.refreshToken ?? "" }))).toBe(
      Code.Unauthenticated,
    );
  });

  it("log-out refuses the session's access token on the next call", async () => {
    const session = await signUpPatient(t);
    await authClient(t, session.accessToken).logOut({});
    expect(await codeOf(patients(session.accessToken).getPatient({ name: session.patient }))).toBe(
      Code.Unauthenticated,
    );
    expect(await codeOf(authClient(t).refreshTokens({ refreshToken: session.refreshToken }))).toBe(
      Code.Unauthenticated,
    );
  });

  it("a changed password refuses every older token and the new one works", async () => {
    const session = await signUpPatient(t);
    const changed = await authClient(t, session.accessToken).changePassword({
      currentPassword: session.password,
      newPassword: "Zt8-meadow-copper-44q",
      totpCode: nextTotp(session.totpSecret),
    });
    expect(await codeOf(patients(session.accessToken).getPatient({ name: session.patient }))).toBe(
      Code.Unauthenticated,
    );
    expect(
      (await patients(changed.tokens?.accessToken ?? "").getPatient({ name: session.patient })).patient,
    ).toBeDefined();
    expect(await codeOf(authClient(t).logIn({ email: session.email, password: session.password }))).toBe(
      Code.Unauthenticated,
    );
  });

  it("limits failed log-ins per account with RESOURCE_EXHAUSTED and a retry hint, even for the right password", async () => {
    const session = await signUpPatient(t);
    for (let attempt = 0; attempt < 5; attempt++) {
      expect(await codeOf(authClient(t).logIn({ email: session.email, password: "wrong password here" }))).toBe(
        Code.Unauthenticated,
      );
    }
    const limited = await authClient(t)
      .logIn({ email: session.email, password: session.password })
      .catch((error: unknown) => ConnectError.from(error));
    expect((limited as ConnectError).code).toBe(Code.ResourceExhausted);
    const retry = (limited as ConnectError).findDetails(RetryInfoSchema)[0];
    expect(Number(retry?.retryDelay?.seconds)).toBeGreaterThan(0);
  });

  it("counts concurrent guesses before checking them: a burst gets no more tries than the limit", async () => {
    const session = await signUpPatient(t);
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => codeOf(authClient(t).logIn({ email: session.email, password: "a guess" }))),
    );
    expect(burst.filter((code) => code === Code.Unauthenticated)).toHaveLength(5);
    expect(burst.filter((code) => code === Code.ResourceExhausted)).toHaveLength(7);
  });

  it("serves a JWKS document that verifies the access tokens", async () => {
    const session = await signUpPatient(t);
    const response = await fetch(`${t.baseUrl}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    const jwks = createLocalJWKSet((await response.json()) as never);
    const { payload, protectedHeader } = await jwtVerify(session.accessToken, jwks, { algorithms: ["EdDSA"] });
    expect(protectedHeader.typ).toBe("at+jwt");
    expect(payload.pid).toBe(session.patientId);
  });

  it("issues service tokens to configured sibling services only", async () => {
    const issued = await authClient(t).issueServiceToken({ clientId: "doctor-service", clientSecret: serviceSecret });
    expect(issued.accessToken.split(".")).toHaveLength(3);
    expect(
      await codeOf(authClient(t).issueServiceToken({ clientId: "doctor-service", clientSecret: "x".repeat(40) })),
    ).toBe(Code.Unauthenticated);
  });
});

describe("emails sent on request", () => {
  it("are limited per address whether or not it has an account, and never say which", async () => {
    const session = await signUpPatient(t);
    for (const email of [session.email, `nobody.${randomUUID()}@example.com`]) {
      for (let sent = 0; sent < 5; sent++) {
        expect(await codeOf(authClient(t).requestPasswordReset({ email }))).toBe("ok");
      }
      expect(await codeOf(authClient(t).requestPasswordReset({ email }))).toBe(Code.ResourceExhausted);
    }
    // Only the account's five reset emails went out (the first message is the sign-up's).
    expect(t.app.siblings.simulators?.notification.messagesTo(session.email)).toHaveLength(6);
  });
});
