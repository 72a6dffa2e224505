import { readdirSync, readFileSync } from "node:fs";

/** Other work seen on the machine while a target ran. */
export interface Interference {
  /** Median over one-second intervals of the CPU, in cores, used by processes that are neither the bench's nor PostgreSQL's. */
  readonly medianCores: number;
  /** The worst one-second interval. */
  readonly maxCores: number;
}

/** What a process has used so far, from /proc/<pid>/stat. */
interface ProcStat {
  readonly ppid: number;
  readonly comm: string;
  readonly jiffies: number;
}

function readProcs(): Map<number, ProcStat> {
  const procs = new Map<number, ProcStat>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const close = stat.lastIndexOf(")");
      const fields = stat.slice(close + 2).split(" ");
      procs.set(pid, {
        comm: stat.slice(stat.indexOf("(") + 1, close),
        ppid: Number(fields[1]),
        jiffies: Number(fields[11]) + Number(fields[12]),
      });
    } catch {
      // The process ended while we looked.
    }
  }
  return procs;
}

/** user + nice + system: interrupt time (loopback traffic's softirqs) is charged to no process, so it is left out. */
function machineBusyJiffies(): number {
  const values = (readFileSync("/proc/stat", "latin1").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  return (values[0] ?? 0) + (values[1] ?? 0) + (values[2] ?? 0);
}

/** This process, its descendants (servers, h2load, drivers) and every PostgreSQL process. */
function isOurs(pid: number, procs: Map<number, ProcStat>): boolean {
  for (let at: number | undefined = pid, hops = 0; at !== undefined && at > 1 && hops < 20; hops++) {
    if (at === process.pid) return true;
    const proc = procs.get(at);
    if (proc === undefined) return false;
    if (proc.comm === "postgres") return true;
    at = proc.ppid;
  }
  return false;
}

/**
 * Samples once a second how much CPU the machine spends on work that is not the
 * bench's (its child processes, h2load) nor PostgreSQL's: on a shared development
 * machine a type check or a test run next door skews throughput, and the report
 * should say so. Linux only; elsewhere it reports nothing.
 */
export function startInterferenceMonitor(): { stop(): Interference | undefined } {
  let previous: { busy: number; procs: Map<number, ProcStat>; at: number } | undefined;
  const samples: number[] = [];
  const tick = () => {
    try {
      const now = { busy: machineBusyJiffies(), procs: readProcs(), at: performance.now() };
      if (previous !== undefined) {
        let ours = 0;
        for (const [pid, proc] of now.procs) {
          const before = previous.procs.get(pid);
          if (before !== undefined && isOurs(pid, now.procs)) ours += proc.jiffies - before.jiffies;
        }
        const seconds = (now.at - previous.at) / 1000;
        samples.push(Math.max(0, now.busy - previous.busy - ours) / 100 / seconds);
      }
      previous = now;
    } catch {
      // No /proc: nothing to report.
    }
  };
  tick();
  const timer = setInterval(tick, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      if (samples.length === 0) return undefined;
      const sorted = [...samples].sort((a, b) => a - b);
      return {
        medianCores: sorted[Math.floor(sorted.length / 2)] as number,
        maxCores: sorted[sorted.length - 1] as number,
      };
    },
  };
}
