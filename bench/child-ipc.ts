/** Messages between bench/run.ts and the child processes it starts (over Node's IPC channel). */
export type ChildMessage =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "stats"; readonly ok: number; readonly failed: number }
  | { readonly type: "result"; readonly result: unknown }
  | { readonly type: "error"; readonly message: string };

/** Parent to child: report counters, or stop and exit. */
export type ParentMessage = { readonly type: "stats" } | { readonly type: "stop" };

/** Calls a server child answered: `ok`, and anything else as `failed`. */
export interface Counters {
  readonly ok: number;
  readonly failed: number;
}

/** Sends a message to the parent; throws when the child was not started with an IPC channel. */
export function sendToParent(message: ChildMessage): void {
  if (!process.send) throw new Error("this file is a bench child process: start it through bench/run.ts");
  process.send(message);
}

/** The options the parent passed in BENCH_CHILD_OPTIONS (JSON). */
export function childOptions<T>(): T {
  const raw = process.env.BENCH_CHILD_OPTIONS;
  if (raw === undefined) throw new Error("BENCH_CHILD_OPTIONS is not set: start this file through bench/run.ts");
  return JSON.parse(raw) as T;
}

/**
 * For server children: answers `stats` with the counters and, on `stop` (or when
 * the parent goes away), runs `stop` and exits, so `--cpu-prof` gets to write its profile.
 */
export function serveParent(counters: () => Counters | Promise<Counters>, stop: () => Promise<void>): void {
  let stopping = false;
  const exit = () => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(0), 5_000);
    stop().finally(() => {
      clearTimeout(timer);
      process.exit(0);
    });
  };
  process.on("message", (message: ParentMessage) => {
    if (message.type === "stats")
      void Promise.resolve(counters()).then((now) => sendToParent({ type: "stats", ...now }));
    else if (message.type === "stop") exit();
  });
  process.on("disconnect", exit);
  process.on("SIGTERM", exit);
}

/** Reports a failure to the parent, then exits non-zero. */
export function failChild(error: unknown): never {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  try {
    sendToParent({ type: "error", message });
  } catch {
    process.stderr.write(`${message}\n`);
  }
  process.exit(1);
}
