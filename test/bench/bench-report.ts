/** One bench figure as printed: `{"bench","value","unit","baseline","baselineValue","ratio"}`. */
export interface BenchLine {
  readonly bench: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline: string;
  readonly baselineValue: number;
  /** Defaults to value / baselineValue. */
  readonly ratio?: number;
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Prints one figure as a JSON line on stdout, numbers rounded to 3 decimals. */
export function printBenchLine(line: BenchLine): void {
  const ratio = line.ratio ?? line.value / line.baselineValue;
  process.stdout.write(`${JSON.stringify({ ...line, value: round(line.value), baselineValue: round(line.baselineValue), ratio: round(ratio) })}\n`);
}

/** The p-th percentile (nearest rank, rounding down) of the values, in any order. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
