import type { AlertConfig, SinkConfig } from '../../core/config/config-schema.ts';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import { ConfigError } from '../../core/errors/index.ts';
import type { CompiledView } from '../../core/views/view-compiler.ts';
import type { AlertTiming } from './alert-state.ts';

/** An alert as the evaluator runs it: the config resolved against its compiled view. */
export interface AlertRule {
  readonly name: string;
  /** The alert as configured: what decides, with the view's definition hash, whether a new definitions version changed it. */
  readonly config: AlertConfig;
  readonly view: CompiledView;
  /** The view's bucket width; null for a view of running totals (`window: none`). */
  readonly bucketMs: number | null;
  /** The sliding window, whole buckets (one bucket when the rule names none); null for running totals. */
  readonly windowMs: number | null;
  readonly where: string | undefined;
  readonly condition: string;
  readonly clear: string | undefined;
  readonly timing: AlertTiming;
  readonly severity: AlertConfig['severity'];
  readonly labels: Readonly<Record<string, string>>;
  readonly notify: readonly SinkConfig[];
  /**
   * The measures a notification's `value` carries: every measure of the view, except distinct-count
   * estimates the rule does not use (merging their sketches for every instance after every
   * micro-batch would cost more than the rest of the evaluation).
   */
  readonly valueMeasures: readonly string[];
}

/** Identifiers used in the rule's SQL; a measure named in a string literal counts too (harmless). */
function identifiersIn(...expressions: (string | undefined)[]): Set<string> {
  return new Set(expressions.flatMap((e) => e?.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []));
}

/** The view's distinct-count measures that no rule on it references: alert evaluation skips them. */
export function unusedSketchMeasures(view: CompiledView, rules: readonly AlertRule[]): Set<string> {
  const used = new Set(rules.filter((r) => r.view.definition.name === view.definition.name).flatMap((r) => r.valueMeasures));
  return new Set(view.definition.measures.filter((m) => m.kind === 'approx_count_distinct' && !used.has(m.name)).map((m) => m.name));
}

/** A configured alert whose view is not served yet (it is backfilling): kept aside, not evaluated. */
export interface WaitingRule {
  readonly name: string;
  readonly config: AlertConfig;
}

/**
 * Resolves every configured alert. The config loader has already checked names, windows and
 * (in bindViews) the SQL of where/condition/clear; a mismatch here is a bug, reported as a
 * ConfigError with the key path all the same.
 */
export function resolveAlertRules(loaded: LoadedConfig): AlertRule[] {
  const { rules, waiting } = resolveServedRules(loaded);
  const first = waiting[0];
  if (first) throw new ConfigError([{ path: `alerts.${first.name}.view`, message: `unknown view "${first.config.view}"` }]);
  return rules;
}

/**
 * Resolves the alerts of `loaded.config.alerts` against the views served now (`loaded.views`):
 * an alert on a view that is not among them (still backfilling) waits.
 */
export function resolveServedRules(loaded: Pick<LoadedConfig, 'config' | 'views'>): { rules: AlertRule[]; waiting: WaitingRule[] } {
  const rules: AlertRule[] = [];
  const waiting: WaitingRule[] = [];
  for (const [name, alert] of Object.entries(loaded.config.alerts)) {
    const view = loaded.views.find((v) => v.definition.name === alert.view);
    if (view) rules.push(resolveRule(name, alert, view));
    else waiting.push({ name, config: alert });
  }
  return { rules, waiting };
}

function resolveRule(name: string, alert: AlertConfig, view: CompiledView): AlertRule {
  const bucketMs = view.definition.windowMs;
  return {
    name,
    config: alert,
    view,
    bucketMs,
    windowMs: bucketMs === null ? null : (alert.window ?? bucketMs),
    where: alert.where,
    condition: alert.condition,
    clear: alert.clear,
    timing: { forMs: alert.for, repeatMs: alert.repeat ?? null },
    severity: alert.severity,
    labels: alert.labels,
    notify: alert.notify,
    valueMeasures: valueMeasures(view, identifiersIn(alert.where, alert.condition, alert.clear)),
  };
}

function valueMeasures(view: CompiledView, referenced: ReadonlySet<string>): string[] {
  return view.definition.measures.filter((m) => m.kind !== 'approx_count_distinct' || referenced.has(m.name)).map((m) => m.name);
}
