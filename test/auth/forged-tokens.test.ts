import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { bearer, signUpPatient, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";

let t: TestApp;
let session: TestSession;
let key: KeyObject;
let kid: string;
let claims: JWTPayload;

beforeAll(async () => {
  t = await startTestApp();
  session = await signUpPatient(t);
  key = createPrivateKey(await readFile(join(t.dataDir, "keys", "auth-signing-key.pem"), "utf8"));
  kid = decodeProtectedHeader(session.accessToken).kid as string;
  claims = decodeJwt(session.accessToken);
});
afterAll(async () => {
  await t?.close();
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A token signed with the service's own key, with changed claims or header. */
function signed(changes: JWTPayload, header: Record<string, unknown> = {}, signingKey: KeyObject = key) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...claims, iat: now, nbf: now, exp: now + 300, ...changes })
    .setProtectedHeader({ alg: "EdDSA", kid, typ: "at+jwt", ...header })
    .sign(signingKey);
}

async function getPatientWith(token: string): Promise<Code | "ok"> {
  const client = createClient(
    PatientService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [bearer(token)] }),
  );
  try {
    await client.getPatient({ name: session.patient });
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("forged and misused tokens are UNAUTHENTICATED", () => {
  it("the genuine token works (the forgeries below differ from it in one way each)", async () => {
    expect(await getPatientWith(session.accessToken)).toBe("ok");
    expect(await getPatientWith(await signed({}))).toBe("ok");
  });

  it.each([
    ["alg none", async () => `${b64({ alg: "none", typ: "at+jwt", kid })}.${b64(claims)}.`],
    [
      "HS256 signed with the public key",
      async () => {
        const publicPem = createPublicKey(key).export({ format: "pem", type: "spki" }).toString();
        return new SignJWT({ ...claims })
          .setProtectedHeader({ alg: "HS256", kid, typ: "at+jwt" })
          .sign(new TextEncoder().encode(publicPem));
      },
    ],
    ["a wrong issuer", () => signed({ iss: "https://evil.example" })],
    ["a wrong audience", () => signed({ aud: "someone-else" })],
    ["expired", () => signed({ iat: 1_000_000, nbf: 1_000_000, exp: 1_000_060 })],
    ["not yet valid", () => signed({ nbf: Math.floor(Date.now() / 1000) + 3600 })],
    ["an unknown kid", () => signed({}, { kid: "not-a-known-key" })],
    [
      "another key with its own kid",
      async () => {
        const other = generateKeyPairSync("ed25519");
        const otherKid = await calculateJwkThumbprint(await exportJWK(other.publicKey));
        return signed({}, { kid: otherKid }, other.privateKey);
      },
    ],
    [
      "a tampered payload",
      async () => {
        const [header, , signature] = session.accessToken.split(".");
        return `${header}.${b64({ ...claims, role: "admin" })}.${signature}`;
      },
    ],
    ["a refresh token used as an access token", async () => session.refreshToken],
    ["a token without typ at+jwt", () => signed({}, { typ: "JWT" })],
    ["a patient token naming another patient", () => signed({ pid: "0190a000-0000-7000-8000-000000000000" })],
    ["garbage", async () => "not.a.token"],
  ])("%s", async (_name, forge) => {
    const code = await getPatientWith(await forge());
    // Another patient id in a validly signed token must not open this patient's data either.
    expect([Code.Unauthenticated, Code.NotFound]).toContain(code);
    if (_name !== "a patient token naming another patient") expect(code).toBe(Code.Unauthenticated);
  });
});
