import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { bearer, nextTotp, testPassword, verificationCode } from "../support/auth-fixtures.ts";
import { createGrpcJsClient, grpcUnary } from "../support/grpc-js-client.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { selfSignedCertificate } from "../support/test-certificate.ts";

/**
 * Issue #6, safety 2: the service port with a generated certificate (TLS_CERT_FILE,
 * TLS_KEY_FILE) answers real RPCs over every protocol it serves, each client verifying
 * the certificate against the test's CA: gRPC with grpc-js and with connect-node (h2 by
 * ALPN), Connect over HTTP/2 and HTTP/1.1, gRPC-Web over HTTP/1.1; and nothing in clear.
 */
let dir: string;
let t: TestApp;
let ca: Buffer;
let httpsUrl: string;
let token: string;
let patient: string;
const sessions: Http2SessionManager[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "patient-tls-rpc-"));
  await selfSignedCertificate(dir);
  ca = await readFile(join(dir, "cert.pem"));
  t = await startTestApp({ TLS_CERT_FILE: join(dir, "cert.pem"), TLS_KEY_FILE: join(dir, "key.pem") });
  httpsUrl = `https://localhost:${t.app.port}`;
  ({ token, patient } = await signUpOverTls());
}, 120_000);

afterAll(async () => {
  for (const session of sessions) session.abort();
  await t?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

type Protocol = "grpc (h2)" | "connect (h2)" | "connect (http/1.1)" | "grpc-web (http/1.1)";

/** A transport of `protocol` over TLS to the test app, trusting only the test's certificate. */
function transport(protocol: Protocol, accessToken?: string): Transport {
  const interceptors = accessToken === undefined ? [] : [bearer(accessToken)];
  const h2 = () => {
    const manager = new Http2SessionManager(httpsUrl, {}, { ca });
    sessions.push(manager);
    return manager;
  };
  switch (protocol) {
    case "grpc (h2)":
      return createGrpcTransport({ baseUrl: httpsUrl, interceptors, sessionManager: h2() });
    case "connect (h2)":
      return createConnectTransport({ baseUrl: httpsUrl, httpVersion: "2", interceptors, sessionManager: h2() });
    case "connect (http/1.1)":
      return createConnectTransport({ baseUrl: httpsUrl, httpVersion: "1.1", interceptors, nodeOptions: { ca } });
    case "grpc-web (http/1.1)":
      return createGrpcWebTransport({ baseUrl: httpsUrl, httpVersion: "1.1", interceptors, nodeOptions: { ca } });
  }
}

/** Sign-up, email verification, log-in and MFA enrolment, all over TLS (Connect, HTTP/1.1). */
async function signUpOverTls(): Promise<{ token: string; patient: string }> {
  const email = `tls.${randomUUID()}@example.com`;
  const anonymous: Client<typeof AuthService> = createClient(AuthService, transport("connect (http/1.1)"));
  const signedUp = await anonymous.signUp({
    patient: fromJson(PatientSchema, newPatientJson({ contact: { email, phone: "+919812345678" } }) as never),
    password: testPassword,
    requestId: randomUUID(),
    acceptedTermsVersion: "2026-11",
  });
  await anonymous.verifyEmail({ token: await verificationCode(t, email) });
  const loggedIn = await anonymous.logIn({ email, password: testPassword });
  if (loggedIn.outcome.case !== "tokens") throw new Error("expected tokens from a first log-in");
  const limited = createClient(AuthService, transport("connect (http/1.1)", loggedIn.outcome.value.accessToken));
  const { enrollment } = await limited.startMfaEnrollment({});
  const confirmed = await limited.confirmMfaEnrollment({ totpCode: nextTotp(enrollment?.secret ?? "") });
  return { token: confirmed.tokens?.accessToken ?? "", patient: signedUp.patient };
}

describe("TLS on the service port, with a generated certificate", () => {
  for (const protocol of ["grpc (h2)", "connect (h2)", "connect (http/1.1)", "grpc-web (http/1.1)"] as const) {
    it(`answers GetPatient over ${protocol}, and refuses a missing token the same way`, async () => {
      const client = createClient(PatientService, transport(protocol, token));
      const { patient: read } = await client.getPatient({ name: patient });
      expect(read?.name).toBe(patient);
      const anonymous = createClient(PatientService, transport(protocol));
      const refused = await anonymous.getPatient({ name: patient }).catch((error: unknown) => ConnectError.from(error));
      expect(refused).toBeInstanceOf(ConnectError);
      expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
    });
  }

  it("answers grpc-js over TLS (a sibling service's client), verifying the certificate", async () => {
    const client = createGrpcJsClient(PatientService, `localhost:${t.app.port}`, grpc.credentials.createSsl(ca));
    try {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token}`);
      const { patient: read } = await grpcUnary(client, PatientService.method.getPatient, { name: patient }, metadata);
      expect(read?.name).toBe(patient);
    } finally {
      client.close();
    }
  });

  it("a client that does not trust the certificate gets no answer", async () => {
    const untrusting = createGrpcJsClient(PatientService, `localhost:${t.app.port}`, grpc.credentials.createSsl());
    try {
      const failure = await grpcUnary(untrusting, PatientService.method.getPatient, { name: patient }, undefined, {
        deadline: Date.now() + 5000,
      }).catch((error: grpc.ServiceError) => error);
      expect((failure as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      untrusting.close();
    }
    await expect(
      createClient(PatientService, createConnectTransport({ baseUrl: httpsUrl, httpVersion: "1.1" })).getPatient({
        name: patient,
      }),
    ).rejects.toThrow();
  });

  it("refuses cleartext gRPC (h2c) and HTTP/1.1 on the TLS port", async () => {
    const h2c = createClient(PatientService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${t.app.port}` }));
    await expect(h2c.getPatient({ name: patient }, { timeoutMs: 5000 })).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${t.app.port}/healthz`)).rejects.toThrow();
  });
});
