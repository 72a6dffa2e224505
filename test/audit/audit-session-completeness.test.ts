import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { toJsonString } from "@bufbuild/protobuf";
import { AuditService, ListAccessEventsResponseSchema } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { authClient, bearer, signUpPatient, staffSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

const connect = (token: string) =>
  createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [bearer(token)] });

describe("the audit log of a scripted session", () => {
  it("records every authentication, read, change and denial of the session, in order, and nothing else", async () => {
    // Sign-up, email verification, a log-in with MFA enrolment (auth-fixtures does these through the API).
    const patient = await signUpPatient(t);
    await authClient(t)
      .logIn({ email: patient.email, password: "wrong password entirely" })
      .catch(() => undefined);
    const patients = createClient(PatientService, connect(patient.accessToken));
    const { patient: profile } = await patients.getPatient({ name: patient.patient });
    await patients.updatePatient({
      patient: { name: patient.patient, preferredLanguage: "hi-IN", etag: profile?.etag },
    });
    // Someone else tries: denied, and the patient can see that someone tried.
    const stranger = await signUpPatient(t);
    const denied = await createClient(PatientService, connect(stranger.accessToken))
      .getPatient({ name: patient.patient })
      .catch((error: unknown) => ConnectError.from(error));
    expect((denied as ConnectError).code).toBe(Code.NotFound);
    // An admin reads the profile.
    const admin = await staffSession(t, "admin");
    await createClient(PatientService, connect(admin.accessToken)).getPatient({ name: patient.patient });
    await authClient(t, patient.accessToken).logOut({});

    const fresh = await authClient(t)
      .logIn({ email: patient.email, password: patient.password })
      .catch(() => undefined);
    expect(fresh?.outcome.case).toBe("mfaChallenge");
    // The owner's own view, oldest first, including their own actions.
    const view = createClient(AuditService, connect(admin.accessToken));
    const { accessEvents } = await view.listAccessEvents({ parent: patient.patient, includeOwn: true, pageSize: 200 });
    const story = accessEvents
      .slice()
      .reverse()
      .map(
        (event) =>
          `${event.resource.split("/")[0]}:${AuditAction[event.action]}:${AuditOutcome[event.outcome]}:${event.actor?.principal === patient.patient ? "self" : event.actor?.principal === stranger.patient ? "stranger" : event.actor?.principal === "" ? "anonymous" : "admin"}`,
      );
    expect(story).toEqual([
      "accounts:CREATE:SUCCESS:self", // SignUp
      "accounts:UPDATE:SUCCESS:self", // VerifyEmail
      "accounts:AUTHENTICATE:SUCCESS:self", // LogIn, enrolment required
      "accounts:UPDATE:SUCCESS:self", // ConfirmMfaEnrollment
      "accounts:AUTHENTICATE:FAILURE:self", // the wrong password
      "patients:READ:SUCCESS:self", // GetPatient
      "patients:UPDATE:SUCCESS:self", // UpdatePatient
      "patients:READ:DENIED:stranger", // the stranger's attempt
      "patients:READ:SUCCESS:admin", // the admin's read
      "accounts:AUTHENTICATE:SUCCESS:self", // LogOut
      "accounts:AUTHENTICATE:SUCCESS:self", // the new log-in (MFA challenge)
    ]);
    // The patient's own view shows that another patient tried, but not who.
    const challenge = fresh?.outcome.case === "mfaChallenge" ? fresh.outcome.value.challengeToken : "";
    const again = await authClient(t).verifyMfa({
      challengeToken: challenge,
      code: { case: "recoveryCode", value: patient.recoveryCodes[0] as string },
    });
    const ownView = createClient(AuditService, connect(again.tokens?.accessToken ?? ""));
    const own = await ownView.listAccessEvents({ parent: patient.patient });
    const attempt = own.accessEvents.find((event) => event.outcome === AuditOutcome.DENIED);
    expect(attempt?.actor).toMatchObject({ principal: "", role: ActorRole.PATIENT, displayName: "another patient" });
    expect(toJsonString(ListAccessEventsResponseSchema, own)).not.toContain(stranger.patientId);
    // Entries carry the request id, and no personal data.
    for (const event of accessEvents) expect(event.requestId).not.toBe("");
    const response = await view.listAccessEvents({ parent: patient.patient, includeOwn: true, pageSize: 200 });
    expect(toJsonString(ListAccessEventsResponseSchema, response)).not.toContain(patient.email);
  });
});
