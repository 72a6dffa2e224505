import { readFile } from "node:fs/promises";

/** The parts of a V8 `.cpuprofile` this summary reads. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/**
 * `node bench/profile-summary.ts FILE.cpuprofile [TOP] [SKIP_SECONDS]`: where a `--cpu-prof`
 * profile (BENCH_PROFILE=<target> writes one per server child) spends its time:
 * self time by package or source folder, the top functions by self time, and the
 * inclusive time of a few frames worth knowing (GC, idle, the service's own code).
 */
async function main(): Promise<void> {
  const [file, topArg, skipArg] = process.argv.slice(2);
  if (file === undefined) throw new Error("usage: node bench/profile-summary.ts FILE.cpuprofile [TOP] [SKIP_SECONDS]");
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const top = Number(topArg ?? 30);
  // Start-up (module loading, migrations) and warm-up are not the steady state: skip them.
  const skipUs = Number(skipArg ?? 0) * 1e6;
  const selfUs = new Map<number, number>();
  let elapsedUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    elapsedUs += delta;
    if (elapsedUs >= skipUs) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  const total = [...selfUs.values()].reduce((sum, value) => sum + value, 0);
  const nodeById = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = nodeById.get(id)?.callFrame;
    if (frame === undefined) continue;
    const where = place(frame.url, frame.functionName);
    const name = `${frame.functionName || "(anonymous)"}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    byPlace.set(where, (byPlace.get(where) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const print = (title: string, map: Map<string, number>, limit: number) => {
    process.stdout.write(`\n${title}\n`);
    for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
      process.stdout.write(`  ${pct(us)}  ${key}\n`);
    }
  };
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled\n`);
  print("self time by package / folder", byPlace, 25);
  print(`top ${top} functions by self time`, byFunction, top);
  print(`top ${top} functions by inclusive time (self plus callees)`, inclusiveTimes(profile, selfUs), top);
}

/** Time spent in each function or anything it called; a recursive function counts once per sample. */
function inclusiveTimes(profile: CpuProfile, selfUs: ReadonlyMap<number, number>): Map<string, number> {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const nodeById = new Map(profile.nodes.map((node) => [node.id, node]));
  const inclusive = new Map<string, number>();
  for (const [leaf, us] of selfUs) {
    const seen = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const frame = nodeById.get(id)?.callFrame;
      if (frame === undefined || frame.url === "") continue;
      const name = `${frame.functionName || "(anonymous)"}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }
  return inclusive;
}

/** `node_modules/<pkg>`, `src/<folder>`, `node:<internal>`, or a V8 pseudo-frame. */
function place(url: string, functionName: string): string {
  if (url === "") return `(${functionName || "native"})`;
  const modules = /.*node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1] as string;
  const source = /\/(src|gen|bench)\/([^/]+)/.exec(url);
  if (source) return `${source[1]}/${source[2]}`;
  if (url.startsWith("node:")) return url;
  return url;
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) return url.slice(modules + "node_modules/".length);
  const source = /\/((?:src|gen|bench)\/.*)$/.exec(url);
  return source ? (source[1] as string) : url;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
