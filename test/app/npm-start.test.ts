import { fromJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { bearer, nextTotp, testPassword } from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";

const run = promisify(execFile);

let child: ChildProcess | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child?.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Starts `npm start` and resolves with the port from its "listening" log line. */
function npmStart(env: NodeJS.ProcessEnv): Promise<{ port: number; pid: number; logs: string[] }> {
  const started = spawn("npm", ["start", "--silent"], { env, stdio: ["ignore", "pipe", "pipe"] });
  child = started;
  const logs: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line in time:\n${logs.join("\n")}`)), 90_000);
    createInterface({ input: started.stderr! }).on("line", (line) => logs.push(line));
    createInterface({ input: started.stdout! }).on("line", (line) => {
      logs.push(line);
      const entry = JSON.parse(line) as { msg?: string; port?: number; pid?: number };
      if (entry.msg === "patient service listening" && entry.port && entry.pid) {
        clearTimeout(timer);
        resolve({ port: entry.port, pid: entry.pid, logs });
      }
    });
    started.once("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${logs.join("\n")}`)));
  });
}

/**
 * An admin logs in through the public API and enrols in MFA (staff must, before
 * their token opens anything); resolves with the full access token.
 */
async function adminAccessToken(base: string, email: string): Promise<string> {
  const transport = (token?: string) =>
    createConnectTransport({ baseUrl: base, httpVersion: "1.1", interceptors: token ? [bearer(token)] : [] });
  const loggedIn = await createClient(AuthService, transport()).logIn({ email, password: testPassword });
  if (loggedIn.outcome.case !== "tokens") throw new Error("expected tokens from a first log-in");
  const limited = createClient(AuthService, transport(loggedIn.outcome.value.accessToken));
  const { enrollment } = await limited.startMfaEnrollment({});
  const confirmed = await limited.confirmMfaEnrollment({ totpCode: nextTotp(enrollment?.secret ?? "") });
  return confirmed.tokens?.accessToken ?? "";
}

describe("npm start with no configuration runs on the embedded defaults", () => {
  it("starts an embedded PostgreSQL, answers health, refuses anonymous callers and lets an admin create a patient; SIGTERM stops it cleanly", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "patient-start-"));
    const env = { ...process.env };
    for (const key of ["DATABASE_URL", "NATS_URL", "REDIS_URL", "PORT", "HOST", "SIMULATORS"]) delete env[key];
    // Only where the data lives and the port differ from a bare `npm start`, so the
    // test neither touches the developer's .data nor needs 8080 to be free.
    const embedded = { ...env, DATA_DIR: dataDir, PORT: "0" };
    // CreatePatient is for admins. An operator makes the first admin with the CLI, on
    // the same embedded database (before the service holds it), as the README says.
    const adminEmail = `admin.${randomUUID()}@example.com`;
    const created = await run(
      "npm",
      ["run", "--silent", "account:create", "--", "--role", "admin", "--email", adminEmail],
      {
        env: { ...embedded, ACCOUNT_PASSWORD: testPassword },
      },
    );
    expect(created.stdout).toMatch(/^created accounts\/\S+ \(admin\)/m);

    const { port, pid, logs } = await npmStart(embedded);
    expect(logs.some((line) => line.includes("EMBEDDED MODE"))).toBe(true);

    const base = `http://127.0.0.1:${port}`;
    const health = await fetch(`${base}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(await health.json()).toEqual({ status: "SERVING" });

    // No token, no patient data: UNAUTHENTICATED before anything else is looked at.
    const anonymous = await createClient(PatientService, createConnectTransport({ baseUrl: base, httpVersion: "1.1" }))
      .getPatient({ name: "patients/0192f2a4-0000-7000-8000-000000000000" })
      .catch((error: unknown) => ConnectError.from(error));
    expect(anonymous).toBeInstanceOf(ConnectError);
    expect((anonymous as ConnectError).code).toBe(Code.Unauthenticated);

    const token = await adminAccessToken(base, adminEmail);
    const patient = await fetch(`${base}/patients`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(newPatientJson()),
    });
    expect(patient.status).toBe(200);
    const name = ((await patient.json()) as { name: string }).name;
    expect(name).toMatch(/^patients\//);
    const read = await fetch(`${base}/${name}`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.status).toBe(200);

    // A patient's own way in works too: SignUp sends its verification email through the
    // embedded notification simulator (in the child process, so its outbox is out of reach).
    const signedUp = await createClient(
      AuthService,
      createConnectTransport({ baseUrl: base, httpVersion: "1.1" }),
    ).signUp({
      patient: fromJson(PatientSchema, newPatientJson() as never),
      password: testPassword,
      requestId: randomUUID(),
      acceptedTermsVersion: "2026-11",
    });
    expect(signedUp.patient).toMatch(/^patients\//);
    expect(signedUp.account?.emailVerified).toBe(false);

    // A container runtime signals the service process itself (the Dockerfile runs
    // node directly); npm's shell does not pass SIGTERM on, so signal the service.
    const npmExited = new Promise((resolve) => child?.once("exit", resolve));
    process.kill(pid, "SIGTERM");
    await npmExited;
    expect(logs.some((line) => line.includes("shutting down"))).toBe(true);
    expect(logs.some((line) => line.includes("patient service stopped"))).toBe(true);
  }, 120_000);
});
