import type { BenchTarget, TargetOutcome } from "./bench-context.ts";
import type { LoadResult } from "./load-result.ts";
import { markdownTable } from "./markdown-table.ts";
import { type RatioMeasure, ratioSpecs } from "./ratios.ts";
import type { TargetId } from "./settings.ts";

/** A target with its outcome, or the error that stopped it. */
export interface TargetReport {
  readonly target: BenchTarget;
  readonly outcome?: TargetOutcome;
  readonly error?: string;
}

/** One computed ratio. `value` is undefined when either side is missing or not valid. */
export interface RatioReport {
  readonly key: string;
  readonly label: string;
  readonly value: number | undefined;
  readonly goal: number | undefined;
  readonly met: boolean | undefined;
  /** Either side ran while other work used the machine: the value is unreliable. */
  readonly disturbed: boolean;
  /** What was compared (ratios.ts). */
  readonly measure: RatioMeasure;
  /** Both sides ran and are valid (a missing value then means the comparison itself is undefined). */
  readonly bothValid: boolean;
}

/** A result counts only when every request succeeded. */
export function isValid(report: TargetReport | undefined): boolean {
  return report?.outcome !== undefined && report.outcome.failures === 0;
}

/** Every ratio whose two targets ran; `disturbedCores` is the other-load level that makes a run unreliable. */
export function computeRatios(reports: readonly TargetReport[], disturbedCores: number): RatioReport[] {
  const byId = new Map<TargetId, TargetReport>(reports.map((report) => [report.target.id, report]));
  return ratioSpecs
    .filter((spec) => byId.has(spec.numerator) && byId.has(spec.denominator))
    .map((spec) => {
      const top = byId.get(spec.numerator);
      const bottom = byId.get(spec.denominator);
      const measure = spec.measure ?? "rps";
      const compared =
        isValid(top) && isValid(bottom)
          ? compare(measure, top?.outcome?.load as LoadResult, bottom?.outcome?.load as LoadResult)
          : undefined;
      const value = compared !== undefined && Number.isFinite(compared) ? compared : undefined;
      // Throughput must reach its goal; latency must stay within it.
      const met =
        spec.goal === undefined || value === undefined
          ? undefined
          : measure === "rps"
            ? value >= spec.goal
            : value <= spec.goal;
      const disturbed = [top, bottom].some((side) => (side?.outcome?.otherLoadCores ?? 0) >= disturbedCores);
      const bothValid = isValid(top) && isValid(bottom);
      return { key: spec.key, label: spec.label, value, goal: spec.goal, met, disturbed, measure, bothValid };
    });
}

/** The compared value of two loads. */
function compare(measure: RatioMeasure, top: LoadResult, bottom: LoadResult): number {
  // A ratio of latencies means nothing when the base is zero or negative (a dispatch
  // that arrives before the answer it is timed from): no value, rather than a
  // negative one that would pass any goal.
  if (measure === "p99") return bottom.p99Ms > 0 ? top.p99Ms / bottom.p99Ms : Number.NaN;
  if (measure === "p99-margin") return top.p99Ms - bottom.p99Ms;
  return top.rps / bottom.rps;
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "-");

/** The results as a Markdown table, then the ratios as a second one. */
export function renderTables(reports: readonly TargetReport[], ratios: readonly RatioReport[]): string {
  const results = markdownTable(
    [
      "target",
      "via",
      "rps",
      "p50 ms",
      "p99 ms",
      "CPU µs/call",
      "PG CPU µs/call",
      "DB stmts/call",
      "other load",
      "failed",
    ],
    ["left", "left", "right", "right", "right", "right", "right", "right", "right", "right"],
    reports.map(({ target, outcome, error }) =>
      outcome
        ? [
            target.label,
            target.via,
            fixed(outcome.load.rps, 0),
            fixed(outcome.load.p50Ms, 2),
            fixed(outcome.load.p99Ms, 2),
            fixed(outcome.load.cpuUsPerCall ?? Number.NaN, 0),
            fixed(outcome.load.pgCpuUsPerCall ?? Number.NaN, 0),
            fixed(outcome.load.dbStatementsPerCall ?? Number.NaN, 2),
            fixed(outcome.otherLoadCores ?? Number.NaN, 2),
            outcome.failures === 0 ? "0" : `**${outcome.failures} (not a result)**`,
          ]
        : [target.label, target.via, "-", "-", "-", "-", "-", "-", "-", `**error: ${(error ?? "").split("\n")[0]}**`],
    ),
  );
  const ratioTable = markdownTable(
    ["ratio (rps; latency where marked)", "value", "goal", "met"],
    ["left", "right", "right", "left"],
    ratios.map((ratio) => [
      ratio.label,
      ratio.value === undefined
        ? ratio.measure === "p99" && ratio.bothValid
          ? "n/a (base p99 <= 0)"
          : "n/a"
        : ratio.measure === "p99-margin"
          ? `${ratio.value >= 0 ? "+" : ""}${fixed(ratio.value, 1)} ms`
          : `${fixed(ratio.value, 2)}x`,
      ratio.goal === undefined
        ? "(reference)"
        : ratio.measure === "rps"
          ? `>= ${ratio.goal}x`
          : ratio.measure === "p99"
            ? `<= ${ratio.goal}x`
            : `<= +${ratio.goal} ms`,
      `${ratio.met === undefined ? (ratio.goal === undefined ? "" : ratio.bothValid ? "not comparable" : "no result") : ratio.met ? "met" : "NOT met"}${ratio.disturbed ? " (other work ran meanwhile: unreliable)" : ""}`,
    ]),
  );
  return ratios.length === 0 ? results : `${results}\n\n${ratioTable}`;
}

/** The one-line JSON summary (for the README): rps and latencies per target, ratios and goals. */
export function jsonSummary(
  reports: readonly TargetReport[],
  ratios: readonly RatioReport[],
  meta: Record<string, unknown>,
): string {
  const round = (value: number, digits: number) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : null);
  const targets = Object.fromEntries(
    reports.map(({ target, outcome, error }) => [
      target.id,
      outcome
        ? {
            rps: round(outcome.load.rps, 0),
            p50Ms: round(outcome.load.p50Ms, 2),
            p99Ms: round(outcome.load.p99Ms, 2),
            cpuUsPerCall: round(outcome.load.cpuUsPerCall ?? Number.NaN, 0),
            pgCpuUsPerCall: round(outcome.load.pgCpuUsPerCall ?? Number.NaN, 0),
            dbStatementsPerCall: round(outcome.load.dbStatementsPerCall ?? Number.NaN, 2),
            otherLoadCores: round(outcome.otherLoadCores ?? Number.NaN, 2),
            failed: outcome.failures,
          }
        : { error: (error ?? "").split("\n")[0] },
    ]),
  );
  const ratioJson = Object.fromEntries(
    ratios.map((ratio) => [
      ratio.key,
      {
        value: ratio.value === undefined ? null : round(ratio.value, 3),
        goal: ratio.goal ?? null,
        met: ratio.met ?? null,
        disturbed: ratio.disturbed,
      },
    ]),
  );
  return JSON.stringify({ ...meta, targets, ratios: ratioJson });
}
