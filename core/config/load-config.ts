import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors/index.ts';
import { parseMeasure, type Measure } from '../views/measure.ts';
import { compileView, type CompiledView } from '../views/view-compiler.ts';
import { WINDOW_END, WINDOW_START, type EventSchema, type ViewDefinition } from '../views/view-definition.ts';

/** Columns every view or rollup of it may have besides its dimensions and measures. */
const WINDOW_COLUMNS: readonly string[] = [WINDOW_START, WINDOW_END];
import { aggregateCallIn } from './aggregate-calls.ts';
import { configSchema, type AlertConfig, type Config } from './config-schema.ts';

/** Table names the serving layer owns; a view may not take them. */
export const RESERVED_TABLES = ['events', 'rejected', 'alert_history'] as const;

/** A configuration that passed every check that needs no database. */
export interface LoadedConfig {
  readonly config: Config;
  readonly schema: EventSchema;
  readonly views: readonly CompiledView[];
  /** Where it was read from, for messages. */
  readonly file?: string;
  /** The document as written (before defaults and units), so its views and alerts can be swapped. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export async function loadConfigFile(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ path: '', message: `cannot read ${file}: ${(error as Error).message}` }], { file });
  }
  return parseConfig(text, { file });
}

/** Parses and validates a YAML config; throws ConfigError listing every problem with its key path. */
export function parseConfig(yamlText: string, options: { file?: string } = {}): LoadedConfig {
  const document = parseDocument(yamlText, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((e) => ({ path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` })),
      options,
    );
  }
  return validateConfig(document.toJS() ?? {}, options);
}

/** Validates an already-parsed config object (e.g. from tests or the demo). */
export function validateConfig(raw: unknown, options: { file?: string } = {}): LoadedConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(toConfigIssue), options);
  const config = parsed.data;
  const issues: ConfigIssue[] = [];
  const schema = resolveSchema(config, issues);
  const definitions = resolveViews(config, schema, issues);
  checkAlerts(config, definitions, issues);
  if (config.zookeeper && !config.source.kafka) {
    issues.push({ path: 'zookeeper', message: 'a cluster (zookeeper) needs source.kafka; remove zookeeper to run single-node' });
  }
  if (issues.length > 0) throw new ConfigError(issues, options);
  const rawDocument = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  return { config, schema, views: definitions.map((d) => compileView(d, schema)), ...(options.file ? { file: options.file } : {}), raw: rawDocument };
}

function toConfigIssue(issue: z.core.$ZodIssue): ConfigIssue {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return { path: [...path, issue.keys[0] ?? ''].join('.'), message: `unknown key${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}` };
  }
  // A bad record key (a view or alert name): zod says only "Invalid key in record"; its own issue says why.
  if (issue.code === 'invalid_key') {
    return { path: path.join('.'), message: `"${path.at(-1)}": ${issue.issues[0]?.message ?? issue.message}` };
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return { path: path.join('.'), message: 'is required' };
  }
  return { path: path.join('.'), message: issue.message };
}

function resolveSchema(config: Config, issues: ConfigIssue[]): EventSchema {
  const timestampField = config.source.timestamp;
  const declared = config.source.schema[timestampField];
  if (declared !== undefined && declared !== 'TIMESTAMP') {
    issues.push({ path: `source.schema.${timestampField}`, message: `the timestamp field must be TIMESTAMP, not ${declared}` });
  }
  const fields = Object.entries(config.source.schema).map(([name, type]) => ({ name, type }));
  if (declared === undefined) fields.unshift({ name: timestampField, type: 'TIMESTAMP' });
  for (const field of fields) {
    if (field.name.startsWith('_')) {
      issues.push({ path: `source.schema.${field.name}`, message: 'field names starting with _ are reserved (_partition, _offset, _kafka_ts)' });
    }
  }
  return { timestampField, fields };
}

function resolveViews(config: Config, schema: EventSchema, issues: ConfigIssue[]): ViewDefinition[] {
  const fieldNames = schema.fields.map((f) => f.name);
  return Object.entries(config.views).map(([name, view]) => {
    const at = `views.${name}`;
    if ((RESERVED_TABLES as readonly string[]).includes(name)) {
      issues.push({ path: at, message: `"${name}" is a built-in table; choose another view name` });
    }
    view.dimensions.forEach((dimension, i) => {
      if (!fieldNames.includes(dimension)) {
        issues.push({ path: `${at}.dimensions.${i}`, message: `unknown field "${dimension}"; fields are ${fieldNames.join(', ')}` });
      }
    });
    const duplicates = view.dimensions.filter((d, i) => view.dimensions.indexOf(d) !== i);
    if (duplicates.length > 0) issues.push({ path: `${at}.dimensions`, message: `"${duplicates[0]}" is listed twice` });
    view.dimensions.forEach((dimension, i) => {
      if (WINDOW_COLUMNS.includes(dimension)) {
        issues.push({ path: `${at}.dimensions.${i}`, message: `"${dimension}" is a window column of the view and its rollups; a field of that name cannot be a dimension` });
      }
    });
    const taken = new Set<string>([...view.dimensions, ...WINDOW_COLUMNS]);
    const measures: Measure[] = [];
    for (const [measureName, expression] of Object.entries(view.measures)) {
      const measurePath = `${at}.measures.${measureName}`;
      if (taken.has(measureName)) {
        issues.push({ path: measurePath, message: `the name "${measureName}" is already a column of the view or its rollups (a dimension, window_start or window_end)` });
      }
      const result = parseMeasure(measureName, expression);
      if (result.ok) measures.push(result.measure);
      else issues.push({ path: measurePath, message: result.message });
    }
    return {
      name,
      windowMs: view.window === 'none' ? null : view.window,
      dimensions: view.dimensions,
      ...(view.filter ? { filter: view.filter } : {}),
      measures,
    };
  });
}

function checkAlerts(config: Config, views: readonly ViewDefinition[], issues: ConfigIssue[]): void {
  for (const [name, alert] of Object.entries(config.alerts)) {
    checkAlertExpressions(name, alert, issues);
    checkAlertSinks(config, name, alert, issues);
    const view = views.find((v) => v.name === alert.view);
    if (!view) {
      issues.push({ path: `alerts.${name}.view`, message: `unknown view "${alert.view}"; views are ${views.map((v) => v.name).join(', ')}` });
      continue;
    }
    if (alert.window !== undefined && view.windowMs === null) {
      issues.push({ path: `alerts.${name}.window`, message: `view "${view.name}" keeps running totals (window: none); remove the alert's window` });
    } else if (alert.window !== undefined && view.windowMs !== null && alert.window % view.windowMs !== 0) {
      issues.push({
        path: `alerts.${name}.window`,
        message: `must be a whole number of the view's ${view.windowMs}ms buckets`,
      });
    }
  }
}

/**
 * `where`, `condition` and `clear` are evaluated per instance over the window's merged measures:
 * the measures are already aggregated, so an aggregate (or window) function has nothing to run over.
 */
function checkAlertExpressions(name: string, alert: AlertConfig, issues: ConfigIssue[]): void {
  for (const key of ['where', 'condition', 'clear'] as const) {
    const expression = alert[key];
    if (expression === undefined) continue;
    const call = aggregateCallIn(expression);
    if (call === undefined) continue;
    issues.push({
      path: `alerts.${name}.${key}`,
      message:
        call === 'over'
          ? 'window functions (OVER) are not allowed; compare the measures of one instance, e.g. "avg_latency > 500"'
          : `aggregate function ${call}() is not allowed: ${key} is evaluated per instance over the window's merged measures; use the measures directly, e.g. "views > 3"`,
    });
  }
}

function checkAlertSinks(config: Config, name: string, alert: AlertConfig, issues: ConfigIssue[]): void {
  alert.notify.forEach((sink, i) => {
    if ('kafka' in sink && !config.source.kafka) {
      issues.push({ path: `alerts.${name}.notify.${i}.kafka`, message: 'a Kafka sink needs source.kafka (the brokers it produces to); use a webhook or log sink on a single node' });
    }
  });
}
