import { DuckDBDateValue, DuckDBTimestampValue, type DuckDBAppender } from '@duckdb/node-api';
import type { FieldType } from '../core/config/config-schema.ts';
import type { FieldValue } from '../core/events/decode-event.ts';

const MS_PER_DAY = 86_400_000;

type Append = (appender: DuckDBAppender, value: NonNullable<FieldValue>) => void;

/** How a decoded value (see `FieldValue`) goes into a column of each field type. */
const APPENDERS: Readonly<Record<FieldType, Append>> = {
  VARCHAR: (a, v) => a.appendVarchar(v as string),
  BOOLEAN: (a, v) => a.appendBoolean(v as boolean),
  INTEGER: (a, v) => a.appendInteger(v as number),
  BIGINT: (a, v) => a.appendBigInt(v as bigint),
  DOUBLE: (a, v) => a.appendDouble(v as number),
  TIMESTAMP: (a, v) => a.appendTimestamp(new DuckDBTimestampValue(BigInt(v as number) * 1000n)),
  DATE: (a, v) => a.appendDate(new DuckDBDateValue(Date.parse(`${v as string}T00:00:00Z`) / MS_PER_DAY)),
};

/** Appends one event's field values, in schema order, to the current row (no endRow). */
export function appendFieldValues(appender: DuckDBAppender, types: readonly FieldType[], values: readonly FieldValue[]): void {
  for (let i = 0; i < types.length; i++) {
    const value = values[i];
    if (value === null || value === undefined) appender.appendNull();
    else APPENDERS[types[i]!](appender, value);
  }
}
