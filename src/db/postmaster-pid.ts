import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";

/**
 * Deals with the `postmaster.pid` a previous run left in a data folder, so that the
 * embedded PostgreSQL starts again after the service crashed or the machine lost power.
 *
 * - The process in it is gone: the file is stale. PostgreSQL would cope alone, but
 *   removing it keeps the start quiet and predictable.
 * - The pid now belongs to an unrelated process (pids are reused, and after a container
 *   restart the same small numbers come back): PostgreSQL would refuse to start, so the
 *   file is removed.
 * - A PostgreSQL is still serving this folder and its parent is another Node process:
 *   another copy of the service uses it, and stopping that one would be wrong. Throws.
 * - Otherwise it is an orphan of a run that was killed (`kill -9`, a crashed terminal):
 *   nobody will stop it, so it is shut down (SIGINT, a fast and safe shutdown) first.
 */
export async function clearLeftoverPostmaster(pgdata: string, warn: (message: string) => void): Promise<void> {
  const pidFile = join(pgdata, "postmaster.pid");
  const text = await readFile(pidFile, "utf8").catch(() => undefined);
  if (text === undefined) return;
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) {
    await rm(pidFile, { force: true });
    return;
  }
  const commandLine = await readProc(pid, "cmdline");
  // Without /proc (macOS), assume the worst: it is a live PostgreSQL on this folder.
  const servesThisFolder = commandLine === undefined || commandLine.split("\0").includes(pgdata);
  if (!servesThisFolder) {
    warn(`removing a stale postmaster.pid: pid ${pid} is now an unrelated process`);
    await rm(pidFile, { force: true });
    return;
  }
  const parent = await parentProgram(pid);
  if (parent === undefined || parent === "node") {
    throw new Error(
      `The embedded PostgreSQL data folder ${pgdata} is in use by a running PostgreSQL (pid ${pid}). ` +
        "Stop the other copy of the service, or set DATA_DIR to another folder.",
    );
  }
  warn(`stopping a PostgreSQL (pid ${pid}) left running on this data folder by an earlier run`);
  process.kill(pid, "SIGINT");
  if (!(await waitForExit(pid, 30_000))) {
    throw new Error(`A PostgreSQL left running on ${pgdata} (pid ${pid}) did not stop within 30 s.`);
  }
}

/** Waits until `pid` is gone; false if it is still there after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** The pid of the postmaster serving `pgdata`, from the first line of its pid file. */
export async function postmasterPid(pgdata: string): Promise<number | undefined> {
  const text = await readFile(join(pgdata, "postmaster.pid"), "utf8").catch(() => undefined);
  const pid = Number.parseInt(text?.split("\n")[0] ?? "", 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user (the postgres user, when we are not root).
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The program name (argv[0] without its folder) of the parent of `pid`: "init" for
 * pid 1 or a parent that is gone, undefined without /proc. Not `comm`: Node 24 names
 * its main thread, so a Node process shows up there as "MainThread".
 */
async function parentProgram(pid: number): Promise<string | undefined> {
  const stat = await readProc(pid, "stat");
  // Format: `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
  const ppid = stat === undefined ? undefined : Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  if (ppid === undefined || !Number.isInteger(ppid)) return undefined;
  if (ppid <= 1) return "init";
  const argv0 = (await readProc(ppid, "cmdline"))?.split("\0")[0];
  return argv0 === undefined ? "init" : (argv0.split("/").pop() ?? argv0);
}

async function readProc(pid: number, file: "cmdline" | "stat" | "comm"): Promise<string | undefined> {
  return readFile(`/proc/${pid}/${file}`, "utf8").catch(() => undefined);
}
