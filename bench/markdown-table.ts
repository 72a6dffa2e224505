/** How a column's cells line up. */
export type Align = "left" | "right";

/**
 * A Markdown table with every column padded to its widest cell, the layout Biome's
 * Markdown formatter produces, so the written bench/last-results.md passes
 * `biome check` as it is (and reads well in a terminal).
 */
export function markdownTable(header: readonly string[], align: readonly Align[], rows: readonly string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, 3, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells
      .map((cell, column) => {
        const width = widths[column] as number;
        return align[column] === "right" ? cell.padStart(width) : cell.padEnd(width);
      })
      .join(" | ")} |`;
  const rule = widths.map((width, column) =>
    align[column] === "right" ? `${"-".repeat(width - 1)}:` : "-".repeat(width),
  );
  return [line(header), line(rule), ...rows.map(line)].join("\n");
}
