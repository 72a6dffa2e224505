/** Messages between bench/run.ts and the child processes it starts (over Node's IPC channel). */
export type ChildMessage =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "stats"; readonly ok: number; readonly failed: number }
  | { readonly type: "measuring" }
  | { readonly type: "result"; readonly result: unknown }
  | { readonly type: "error"; readonly message: string };

/** Parent to child: report counters, or stop and exit. */
export type ParentMessage = { readonly type: "stats" } | { readonly type: "stop" };

/** Calls a server child answered: `ok`, and anything else as `failed`. */
export interface Counters {
  readonly ok: number;
  readonly failed: number;
}

/** Sends a message to the parent, resolving once it is handed over (so exiting next loses nothing). */
export function sendToParent(message: ChildMessage): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error("this file is a bench child process: start it through bench/run.ts");
  return new Promise((resolve, reject) => {
    send(message, undefined, undefined, (error: Error | null) => (error ? reject(error) : resolve()));
  });
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

/**
 * For load drivers: exit when bench/run.ts says stop or goes away, whatever the
 * driver is doing. A driver stays alive after its result until then, so the
 * parent's readings (CPU of the pool's backends) happen while everything is open.
 */
export function exitWhenParentStops(): void {
  process.on("message", (message: ParentMessage) => {
    if (message.type === "stop") process.exit(0);
  });
  process.on("disconnect", () => process.exit(0));
}

/** Reports a failure to the parent, then exits non-zero. */
export function failChild(error: unknown): never {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`${message}\n`);
  if (!process.send) process.exit(1);
  // Exit even if the parent is gone and the message never leaves.
  setTimeout(() => process.exit(1), 2_000).unref();
  void sendToParent({ type: "error", message }).finally(() => process.exit(1));
  return undefined as never;
}
