import { isDeepStrictEqual } from 'node:util';
import type { AlertRule, WaitingRule } from './alert-rule.ts';

/** What a new set of alert rules changed, by rule name (each list sorted). */
export interface AlertRulesChange {
  /** Evaluated from now on, and not before: new, or waiting until now for their view. */
  readonly added: readonly string[];
  /** Evaluated before and after, with another alert config or over another definition of their view. */
  readonly changed: readonly string[];
  /** No longer configured: their pending and firing instances end. */
  readonly removed: readonly string[];
  /** Same alert config, same view definition: instances, timers and window cache untouched. */
  readonly unchanged: readonly string[];
  /** Configured, but their view is not served yet (backfilling): not evaluated. */
  readonly waiting: readonly string[];
}

export interface RuleSet {
  /** The rules evaluated. */
  readonly running: readonly AlertRule[];
  readonly waiting: readonly WaitingRule[];
}

/**
 * Compares two rule sets (pure). A running rule is unchanged when its own alert config is deep-equal
 * and its view's `definitionHash` is the same; anything else about it counts as changed. A rule
 * that was waiting and now runs is added: it starts as at process start.
 */
export function planRulesChange(previous: RuleSet, next: RuleSet): AlertRulesChange {
  const before = new Map(previous.running.map((r) => [r.name, r]));
  const configured = new Set([...next.running, ...next.waiting].map((r) => r.name));
  const added: string[] = [];
  const changed: string[] = [];
  const unchanged: string[] = [];
  for (const rule of next.running) {
    const old = before.get(rule.name);
    if (!old) added.push(rule.name);
    else if (isSameRule(old, rule)) unchanged.push(rule.name);
    else changed.push(rule.name);
  }
  const removed = [...previous.running, ...previous.waiting].map((r) => r.name).filter((name) => !configured.has(name));
  const sorted = (names: string[]) => [...new Set(names)].sort();
  return { added: sorted(added), changed: sorted(changed), removed: sorted(removed), unchanged: sorted(unchanged), waiting: sorted(next.waiting.map((r) => r.name)) };
}

export function isSameRule(a: AlertRule, b: AlertRule): boolean {
  return a.view.definitionHash === b.view.definitionHash && isDeepStrictEqual(a.config, b.config);
}

/**
 * Whether an instance key of `before` names the same thing under `after`: the key is the JSON
 * object of the view's dimensions (event fields, so of fixed types), hence the same dimensions in
 * the same order (a measure, a filter, the window, even the view may differ). Instances of a
 * changed rule whose keys keep their meaning keep their state; the others end.
 */
export function keysKeepMeaning(before: AlertRule, after: AlertRule): boolean {
  return isDeepStrictEqual(before.view.definition.dimensions, after.view.definition.dimensions);
}
