import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { newPatientJson } from "../support/patient-fixtures.ts";

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

describe("npm start with no configuration runs on the embedded defaults", () => {
  it("starts an embedded PostgreSQL, answers health and creates a patient; SIGTERM stops it cleanly", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "patient-start-"));
    const env = { ...process.env };
    for (const key of ["DATABASE_URL", "NATS_URL", "REDIS_URL", "PORT", "HOST", "SIMULATORS"]) delete env[key];
    // Only where the data lives and the port differ from a bare `npm start`, so the
    // test neither touches the developer's .data nor needs 8080 to be free.
    const { port, pid, logs } = await npmStart({ ...env, DATA_DIR: dataDir, PORT: "0" });
    expect(logs.some((line) => line.includes("EMBEDDED MODE"))).toBe(true);

    const base = `http://127.0.0.1:${port}`;
    const health = await fetch(`${base}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(await health.json()).toEqual({ status: "SERVING" });

    const created = await fetch(`${base}/patients`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(newPatientJson()),
    });
    expect(created.status).toBe(200);
    expect(((await created.json()) as { name: string }).name).toMatch(/^patients\//);

    // A container runtime signals the service process itself (the Dockerfile runs
    // node directly); npm's shell does not pass SIGTERM on, so signal the service.
    const npmExited = new Promise((resolve) => child?.once("exit", resolve));
    process.kill(pid, "SIGTERM");
    await npmExited;
    expect(logs.some((line) => line.includes("shutting down"))).toBe(true);
    expect(logs.some((line) => line.includes("patient service stopped"))).toBe(true);
  }, 120_000);
});
