import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Socket } from "node:net";
import { fileURLToPath } from "node:url";

/**
 * Child processes of the fault-injection test: its own nats-server and the Patient
 * Service itself, each killed with SIGKILL and started again on the same port with
 * the same store. The shared servers on 4222/5432/6379 are never touched.
 */

export { freePort } from "../../support/free-port.ts";

const repositoryRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Resolves once something accepts TCP connections on `port`. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.setTimeout(500);
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
      socket.connect(port, "127.0.0.1");
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function killHard(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** `nats-server -js` on a port and a store folder of its own. */
export class NatsChild {
  readonly port: number;
  readonly #store: string;
  #child: ChildProcess | undefined;

  constructor(port: number, store: string) {
    this.port = port;
    this.#store = store;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#child = spawn(
      "/usr/sbin/nats-server",
      ["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.#store],
      { stdio: "ignore" },
    );
    await waitForPort(this.port, 15_000);
  }

  kill(): Promise<void> {
    return killHard(this.#child);
  }
}

/**
 * The Patient Service as `npm start` runs it (`node src/main.ts`), configured by
 * environment, on a fixed port. Like a process supervisor it is started again when
 * it exits on its own (a start that found PostgreSQL or NATS down); `kill` is a
 * SIGKILL and `start` brings it back.
 */
export class ServiceChild {
  readonly port: number;
  readonly #env: Record<string, string>;
  readonly #log: WriteStream;
  readonly #logFile: string;
  #child: ChildProcess | undefined;
  #wanted = false;
  starts = 0;

  constructor(port: number, env: Record<string, string>, logFile: string) {
    this.port = port;
    this.#env = env;
    this.#logFile = logFile;
    this.#log = createWriteStream(logFile, { flags: "a" });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts it (again), restarting until it listens. */
  async start(): Promise<void> {
    this.#wanted = true;
    this.#spawn();
    await waitForPort(this.port, 60_000);
  }

  /** SIGKILL: no shutdown, no drain, nothing flushed. */
  async kill(): Promise<void> {
    this.#wanted = false;
    await killHard(this.#child);
  }

  async stop(): Promise<void> {
    this.#wanted = false;
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      await killHard(child);
    }
    await new Promise((resolve) => this.#log.end(resolve));
  }

  /** Its log so far (every start's output). */
  log(): Promise<string> {
    return readFile(this.#logFile, "utf8").catch(() => "");
  }

  /** The last lines of its log, for a failure message. */
  async tail(lines = 30): Promise<string> {
    return (await this.log()).split("\n").slice(-lines).join("\n");
  }

  #spawn(): void {
    this.starts += 1;
    const child = spawn(process.execPath, ["src/main.ts"], {
      cwd: repositoryRoot,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...this.#env, PORT: String(this.port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(this.#log, { end: false });
    child.stderr?.pipe(this.#log, { end: false });
    child.once("exit", () => {
      if (this.#child === child && this.#wanted) setTimeout(() => this.#wanted && this.#spawn(), 300);
    });
    this.#child = child;
  }
}
