import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc's CPU times (USER_HZ); 100 on every Linux we run on. */
const ticksPerSecond = 100;

/**
 * CPU time (user + system, all threads) a process has used so far, in seconds,
 * from /proc/<pid>/stat; undefined where there is no /proc. Divided by the calls
 * served in a window, it gives CPU per call: a figure that, unlike throughput,
 * hardly moves when other work on the machine competes for the cores.
 */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/** Whole-machine CPU counters from /proc/stat: busy and total jiffies. */
function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n")[0] ?? "";
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    const total = values.reduce((sum, value) => sum + value, 0);
    const idle = (values[3] ?? 0) + (values[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * Waits (up to `maxWaitMs`) until the machine is quiet: less than `threshold` of
 * its CPU busy over half a second. Other work on a shared machine (a type check, a
 * test run) skews throughput, so each target starts on a quiet machine when it can.
 * Returns the busy fraction last seen (undefined where there is no /proc).
 */
export async function waitForQuietMachine(maxWaitMs = 20_000, threshold = 0.15): Promise<number | undefined> {
  const until = Date.now() + maxWaitMs;
  for (;;) {
    const before = machineJiffies();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = machineJiffies();
    if (before === undefined || after === undefined) return undefined;
    const busy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    if (busy < threshold || Date.now() >= until) return busy;
  }
}
