import { parseJsonObject } from './alert-record.ts';
import type { AlertEvaluator, AlertInstance } from './alert-evaluator.ts';
import type { AlertConfig } from '../../core/config/config-schema.ts';
import type { WaitingRule } from './alert-rule.ts';

/** A configured rule the evaluator left out: it does not bind over its view (logged). */
export interface UnboundRule {
  readonly name: string;
  readonly config: AlertConfig;
  readonly message: string;
}
import type { AlertStatus } from './alert-state.ts';
import type { SinkLaneStatus } from './sink-lane.ts';

/** The body of `GET /v1/alerts`. Times are ISO-8601 strings, durations milliseconds. */
export interface AlertsResponse {
  readonly evaluatedAt: string | null;
  readonly evaluationMs: number | null;
  readonly notifier: { readonly delivering: boolean; readonly sinks: readonly SinkStatusJson[] };
  readonly rules: readonly RuleJson[];
  readonly instances: readonly InstanceJson[];
}

export interface RuleJson {
  readonly name: string;
  /** `evaluating`; `waiting: view X is backfilling`; or `failed: …` when it does not bind over its view. */
  readonly state: string;
  readonly view: string;
  readonly windowMs: number | null;
  readonly where: string | null;
  readonly condition: string;
  readonly clear: string | null;
  readonly forMs: number;
  readonly repeatMs: number | null;
  readonly severity: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Readonly<Record<'pending' | 'firing' | 'resolved', number>>;
}

export interface InstanceJson {
  readonly alert: string;
  readonly key: Record<string, unknown>;
  readonly state: AlertStatus;
  readonly since: string;
  /** The value measures now (over the window of the last evaluation); null without data. */
  readonly value: Record<string, unknown> | null;
  /** The window of its last transition. */
  readonly window: { readonly start: string; readonly end: string } | null;
  readonly lastNotification: { readonly id: string; readonly state: AlertStatus; readonly reminder: boolean; readonly at: string } | null;
}

export interface SinkStatusJson {
  readonly sink: string;
  readonly description: string;
  readonly delivering: boolean;
  readonly pending: number;
  readonly lastDelivered: { readonly id: string; readonly at: string; readonly deliveredAt: string } | null;
  readonly lastError: string | null;
  /** Notifications the sink kept refusing, parked (skipped) since start, and the newest of them. */
  readonly parked: number;
  readonly recentlyParked: readonly { readonly id: string; readonly alert: string; readonly error: string; readonly parkedAt: string }[];
}

export interface AlertsQuery {
  readonly alert?: string;
  readonly state?: AlertStatus;
}

/** What the notifier side contributes (the outbox); absent on a process that only evaluates. */
export interface NotifierStatusSource {
  readonly isOwner: boolean;
  status(): SinkLaneStatus[];
}

const STATE_ORDER: Record<AlertStatus, number> = { firing: 0, pending: 1, resolved: 2, inactive: 3 };
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Builds the `GET /v1/alerts` answer: rules, the instances that are not inactive with their
 * current value (the window of the last evaluation), and delivery status.
 */
export async function alertsResponse(
  evaluator: AlertEvaluator,
  notifier: NotifierStatusSource | undefined,
  query: AlertsQuery = {},
  idle: { readonly waiting?: readonly WaitingRule[]; readonly unbound?: readonly UnboundRule[] } = {},
): Promise<AlertsResponse> {
  const all = evaluator.instances();
  const current = await evaluator.currentValues();
  const notEvaluated = [
    ...(idle.waiting ?? []).map((w) => idleRuleJson(w.name, w.config, `waiting: view ${w.config.view} is backfilling`)),
    ...(idle.unbound ?? []).map((u) => idleRuleJson(u.name, u.config, `failed: ${u.message}`)),
  ];
  const evaluated = evaluator.rules.map((rule): RuleJson => {
      const counts = { pending: 0, firing: 0, resolved: 0 };
      for (const i of all) if (i.alert === rule.name && i.state.status !== 'inactive') counts[i.state.status]++;
      return {
        name: rule.name,
        state: 'evaluating',
        view: rule.view.definition.name,
        windowMs: rule.windowMs,
        where: rule.where ?? null,
        condition: rule.condition,
        clear: rule.clear ?? null,
        forMs: rule.timing.forMs,
        repeatMs: rule.timing.repeatMs,
        severity: rule.severity,
        labels: rule.labels,
        counts,
      };
    });
  const rules = [...evaluated, ...notEvaluated].filter((r) => query.alert === undefined || r.name === query.alert);
  const instances = all
    .filter((i) => (query.alert === undefined || i.alert === query.alert) && (query.state === undefined || i.state.status === query.state))
    .sort((a, b) => STATE_ORDER[a.state.status] - STATE_ORDER[b.state.status] || b.state.sinceMs - a.state.sinceMs)
    .map((i) => instanceJson(i, current.get(i.alert)?.get(i.keyJson) ?? null));
  const last = evaluator.lastEvaluation;
  return {
    evaluatedAt: last ? iso(last.atMs) : null,
    evaluationMs: last ? Math.round(last.durationMs * 10) / 10 : null,
    notifier: { delivering: notifier?.isOwner ?? false, sinks: (notifier?.status() ?? []).map(sinkJson) },
    rules,
    instances,
  };
}

/** A rule that is configured but not evaluated, described from its config. */
function idleRuleJson(name: string, config: AlertConfig, state: string): RuleJson {
  return {
    name,
    state,
    view: config.view,
    windowMs: config.window ?? null,
    where: config.where ?? null,
    condition: config.condition,
    clear: config.clear ?? null,
    forMs: config.for,
    repeatMs: config.repeat ?? null,
    severity: config.severity,
    labels: config.labels,
    counts: { pending: 0, firing: 0, resolved: 0 },
  };
}

function instanceJson(i: AlertInstance, currentValueJson: string | null): InstanceJson {
  return {
    alert: i.alert,
    key: parseJsonObject(i.keyJson) ?? {},
    state: i.state.status,
    since: iso(i.state.sinceMs),
    value: parseJsonObject(currentValueJson),
    window: i.window ? { start: iso(i.window.startMs), end: iso(i.window.endExclusiveMs) } : null,
    lastNotification: i.lastNotification
      ? { id: i.lastNotification.id, state: i.lastNotification.state, reminder: i.lastNotification.reminder, at: iso(i.lastNotification.atMs) }
      : null,
  };
}

function sinkJson(s: SinkLaneStatus): SinkStatusJson {
  return {
    sink: s.sink,
    description: s.description,
    delivering: s.delivering,
    pending: s.pending,
    lastDelivered: s.lastDelivered ? { id: s.lastDelivered.id, at: iso(s.lastDelivered.atMs), deliveredAt: iso(s.lastDelivered.deliveredAtMs) } : null,
    lastError: s.lastError,
    parked: s.parked,
    recentlyParked: s.recentlyParked.map((p) => ({ id: p.id, alert: p.alert, error: p.error, parkedAt: iso(p.parkedAtMs) })),
  };
}
