// Types of chart-series.js (the console is plain JavaScript), for its unit test.
export interface ChartData {
  readonly xsMs: number[];
  readonly endsMs: number[];
  readonly names: string[];
  readonly values: Record<string, (number | null)[]>;
  readonly fillingIndex: number | null;
}
export function toChartData(rows: readonly (readonly unknown[])[], nowMs: number): ChartData;
export function splitAtFilling(ys: readonly (number | null)[], fillingIndex: number | null): { complete: (number | null)[]; filling: (number | null)[] };
export function parseUtcMs(text: string): number;
