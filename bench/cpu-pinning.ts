import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";

/** Which cores the server under test and the load generator run on, if they can be pinned. */
export interface CpuPinning {
  /** False when taskset is missing or the machine has one core: then nothing is pinned. */
  readonly enabled: boolean;
  readonly serverCore: number;
  readonly loadCore: number;
  /** One line for the report. */
  readonly description: string;
}

/**
 * Pins the server under test to core 0 and the load generator to core 1 with
 * `taskset` (util-linux), so neither steals the other's CPU and every target gets the
 * same budget: one core to serve, one to generate load. PostgreSQL is not pinned.
 */
export function detectCpuPinning(): CpuPinning {
  const cores = availableParallelism();
  const taskset = spawnSync("taskset", ["--version"], { encoding: "utf8" });
  const enabled = taskset.status === 0 && cores >= 2;
  const description = enabled
    ? `server under test pinned to core 0, load generator to core 1 (taskset; ${cores} cores; PostgreSQL unpinned)`
    : `NOT pinned (${taskset.status === 0 ? `${cores} core(s)` : "taskset not found"}): ratios are less fair`;
  return { enabled, serverCore: 0, loadCore: 1, description };
}

/** `command args` prefixed with `taskset -c core` when pinning is enabled. */
export function pinned(
  pinning: CpuPinning,
  core: number,
  command: string,
  args: readonly string[],
): [string, string[]] {
  return pinning.enabled ? ["taskset", ["-c", String(core), command, ...args]] : [command, [...args]];
}
