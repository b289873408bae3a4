import { unusedSketchMeasures, type AlertRule } from './alert-rule.ts';
import { AlertWindowCache } from './alert-window-cache.ts';

/**
 * One cache per windowed view with rules, keeping the longest window (plus a bucket) of buckets.
 * A cache of `current` that is interchangeable with the one wanted (same view definition,
 * horizon and unused measures: AlertWindowCache.key) is kept as it is, so that rules that did not
 * change lose nothing; another is built anew (at the next micro-batch) after the one it replaces.
 * `dropped` are the caches of views no windowed rule reads any more.
 */
export function windowCachesFor(
  rules: readonly AlertRule[],
  current: ReadonlyMap<string, AlertWindowCache> = new Map(),
): { caches: Map<string, AlertWindowCache>; dropped: AlertWindowCache[] } {
  const caches = new Map<string, AlertWindowCache>();
  for (const rule of rules) {
    if (rule.bucketMs === null || rule.windowMs === null) continue;
    const name = rule.view.definition.name;
    if (caches.has(name)) continue;
    const longest = Math.max(...rules.filter((r) => r.view.definition.name === name).map((r) => r.windowMs ?? 0));
    const existing = current.get(name);
    const wanted = new AlertWindowCache(rule.view, longest + rule.bucketMs, {
      unusedMeasures: unusedSketchMeasures(rule.view, rules),
      ...(existing ? { replaces: existing } : {}),
    });
    caches.set(name, existing?.key === wanted.key ? existing : wanted);
  }
  const dropped = [...current].filter(([name]) => !caches.has(name)).map(([, cache]) => cache);
  return { caches, dropped };
}
