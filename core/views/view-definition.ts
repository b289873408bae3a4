import type { FieldType } from '../config/config-schema.ts';
import type { Measure } from './measure.ts';

/** The event fields as declared in `source.schema`; the timestamp field is always TIMESTAMP. */
export interface EventSchema {
  readonly timestampField: string;
  readonly fields: readonly { readonly name: string; readonly type: FieldType }[];
}

/** A view as the compiler sees it: names checked, measures parsed, window in milliseconds. */
export interface ViewDefinition {
  readonly name: string;
  /** Tumbling event-time bucket width; null for running totals per key (`window: none`). */
  readonly windowMs: number | null;
  readonly dimensions: readonly string[];
  readonly filter?: string;
  readonly measures: readonly Measure[];
}

/** The column holding a bucket's inclusive start, present in windowed views only. */
export const WINDOW_START = 'window_start';
/** A rollup's window end (exclusive), next to window_start. */
export const WINDOW_END = 'window_end';
