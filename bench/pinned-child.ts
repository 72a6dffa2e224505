import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildMessage, ParentMessage } from "./child-ipc.ts";
import { type CpuPinning, pinned } from "./cpu-pinning.ts";

/** How to start a bench child: which file, on which core, with what. */
export interface ChildSpec {
  /** File name in bench/, for example `grpc-js-echo-server.ts`. */
  readonly script: string;
  readonly core: number;
  /** Passed as BENCH_CHILD_OPTIONS (JSON). */
  readonly options?: unknown;
  /** Extra environment variables. */
  readonly env?: Record<string, string>;
  /** Extra Node flags, for example `--cpu-prof`. */
  readonly nodeArgs?: readonly string[];
}

/** A running child, talking to bench/run.ts over IPC. */
export interface BenchChild {
  readonly process: ChildProcess;
  /** The next message of the given type; rejects when the child reports an error or exits first. */
  next<T extends ChildMessage["type"]>(type: T, timeoutMs?: number): Promise<Extract<ChildMessage, { type: T }>>;
  /** Asks the child to stop and waits until it has exited (killing it after a grace period). */
  stop(): Promise<void>;
}

/**
 * Starts `node bench/<script>` (the same Node binary as this process, so the pinned
 * Node 24), pinned to `core` with taskset when enabled. taskset exec()s Node, so the
 * IPC channel passes straight through.
 */
export function startChild(pinning: CpuPinning, spec: ChildSpec): BenchChild {
  const script = fileURLToPath(new URL(spec.script, import.meta.url));
  const [command, args] = pinned(pinning, spec.core, process.execPath, [...(spec.nodeArgs ?? []), script]);
  const child = spawn(command, args, {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, ...spec.env, BENCH_CHILD_OPTIONS: JSON.stringify(spec.options ?? {}) },
  });
  // Resolves when the child has exited, or never started.
  const gone = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const inbox: ChildMessage[] = [];
  const waiters = new Set<() => void>();
  let exited: string | undefined;
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  child.on("message", (message: ChildMessage) => {
    inbox.push(message);
    wake();
  });
  child.on("exit", (code, signal) => {
    exited = `${spec.script} exited (${signal ?? `code ${code}`})`;
    wake();
  });
  child.on("error", (error) => {
    exited = `${spec.script} could not start: ${error.message}`;
    wake();
  });

  const next = <T extends ChildMessage["type"]>(type: T, timeoutMs = 120_000) =>
    new Promise<Extract<ChildMessage, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`${spec.script}: no "${type}" after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = () => {
        const index = inbox.findIndex((message) => message.type === type || message.type === "error");
        if (index >= 0) {
          const [message] = inbox.splice(index, 1) as [ChildMessage];
          if (message.type === "error") settle(new Error(`${spec.script} failed: ${message.message}`));
          else settle(undefined, message as Extract<ChildMessage, { type: T }>);
        } else if (exited !== undefined) {
          settle(new Error(exited));
        }
      };
      const settle = (error?: Error, message?: Extract<ChildMessage, { type: T }>) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolve(message as Extract<ChildMessage, { type: T }>);
      };
      waiters.add(check);
      check();
    });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    if (child.connected) child.send({ type: "stop" } satisfies ParentMessage);
    else child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await gone;
    clearTimeout(timer);
  };

  return { process: child, next, stop };
}

/** Asks a server child for its counters of answered calls. */
export async function childStats(child: BenchChild): Promise<{ ok: number; failed: number }> {
  child.process.send({ type: "stats" } satisfies ParentMessage);
  const { ok, failed } = await child.next("stats", 10_000);
  return { ok, failed };
}
