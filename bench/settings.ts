import type { LoadAmount } from "./load-result.ts";

/** Every target the bench knows, in the order it runs them. */
export const targetIds = [
  // Each ratio's two sides run one after the other, so a slow spell of the machine hits both alike.
  "grpc-js-echo",
  "get-patient-grpc",
  "connect-echo-json",
  "get-patient-json",
  "connect-echo-grpc",
  "grpc-js-echo-driver",
  "get-patient-grpc-many",
  "connect-echo-json-driver",
  "get-patient-json-many",
  "pg-select",
  "pg-insert",
  "create-patient",
  // Issue 6's cost of encryption at rest: encrypted reads against the echo, the write against its INSERT.
  "get-record-grpc",
  "list-records-grpc",
  "create-record",
  "pg-insert-record",
  "book-consultation",
  "pg-insert-consultation",
  "notification-delay",
  "notification-delay-loaded",
  // Issue 5's precedence: the floor, then the emergency idle and under a routine flood.
  "jetstream-publish-consume",
  "emergency-ack-to-paramedic",
  "emergency-ack-to-paramedic-loaded",
] as const;
export type TargetId = (typeof targetIds)[number];

/** How the bench runs, from BENCH_* environment variables. */
export interface BenchSettings {
  /** BENCH_SECONDS (default 8) or BENCH_REQUESTS: how long each measured run lasts. */
  readonly amount: LoadAmount;
  /** BENCH_WARMUP_SECONDS (default 2): load before each measured run, not counted. */
  readonly warmupSeconds: number;
  /** BENCH_PATIENTS (default 1024): how many patients the many-patient GetPatient targets read. */
  readonly patients: number;
  /** BENCH_STREAMS (default 64): concurrent streams (or inserts) in flight. */
  readonly streams: number;
  /** BENCH_ONLY: a comma-separated subset of the targets (default all). */
  readonly only: readonly TargetId[];
  /** BENCH_PROFILE: targets whose server child runs with `--cpu-prof` (comma-separated, or `all`). */
  readonly profile: readonly TargetId[];
  /** BENCH_PROFILE_DIR: where the .cpuprofile files go (default a temporary folder). */
  readonly profileDir: string | undefined;
  /** BENCH_SERVER_NODE_ARGS: extra Node flags for every server child (space-separated), e.g. `--max-semi-space-size=32`. */
  readonly serverNodeArgs: readonly string[];
}

/** Reads the settings; throws one error naming every bad variable. */
export function readSettings(env: Readonly<Record<string, string | undefined>>): BenchSettings {
  const problems: string[] = [];
  const number = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };
  const targets = (name: string, fallback: readonly TargetId[]): TargetId[] => {
    const raw = env[name];
    if (raw === undefined || raw === "") return [...fallback];
    if (raw === "all") return [...targetIds];
    const names = raw.split(",").map((part) => part.trim());
    const unknown = names.filter((part) => !targetIds.includes(part as TargetId));
    if (unknown.length > 0)
      problems.push(`${name}: unknown target(s) ${unknown.join(", ")}; known: ${targetIds.join(", ")}`);
    return targetIds.filter((id) => names.includes(id));
  };
  const requests = env.BENCH_REQUESTS ? number("BENCH_REQUESTS", 0, 100, 10_000_000) : undefined;
  const settings: BenchSettings = {
    amount: requests === undefined ? { seconds: number("BENCH_SECONDS", 8, 1, 600) } : { requests },
    warmupSeconds: number("BENCH_WARMUP_SECONDS", 2, 1, 60),
    patients: number("BENCH_PATIENTS", 1024, 1, 100_000),
    streams: number("BENCH_STREAMS", 64, 1, 1000),
    only: targets("BENCH_ONLY", targetIds),
    profile: targets("BENCH_PROFILE", []),
    profileDir: env.BENCH_PROFILE_DIR || undefined,
    serverNodeArgs: (env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== ""),
  };
  if (problems.length > 0) throw new Error(`Invalid bench settings:\n  - ${problems.join("\n  - ")}`);
  return settings;
}
