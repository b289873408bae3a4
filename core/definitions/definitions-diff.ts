import { isDeepStrictEqual } from 'node:util';

/** Names added, changed and removed between two sets of one kind (views or alerts), sorted. */
export interface NameDiff {
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

export interface DefinitionsDiff {
  readonly views: NameDiff;
  readonly alerts: NameDiff;
}

/** What a comparison reads: the entries of each kind, in whatever normal form both sides share. */
export interface ComparableDefinitions {
  readonly views: Readonly<Record<string, unknown>>;
  readonly alerts: Readonly<Record<string, unknown>>;
}

/**
 * Compares validated (normalized) definitions, so `1m` and `60s`, or a default written out, are
 * not a change. `before` undefined: everything is added.
 */
export function diffDefinitions(before: ComparableDefinitions | undefined, after: ComparableDefinitions): DefinitionsDiff {
  return {
    views: diffEntries(before?.views ?? {}, after.views),
    alerts: diffEntries(before?.alerts ?? {}, after.alerts),
  };
}

function diffEntries(before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>): NameDiff {
  const names = (record: Readonly<Record<string, unknown>>) => Object.keys(record).sort();
  return {
    added: names(after).filter((name) => !(name in before)),
    changed: names(after).filter((name) => name in before && !isDeepStrictEqual(before[name], after[name])),
    removed: names(before).filter((name) => !(name in after)),
  };
}

export function isEmptyDiff(diff: DefinitionsDiff): boolean {
  return [diff.views, diff.alerts].every((d) => d.added.length + d.changed.length + d.removed.length === 0);
}

/** One line per name, as `lambda apply` prints it: `+ view x`, `~ alert y`, `- view z`. */
export function formatDiff(diff: DefinitionsDiff): string {
  const lines: string[] = [];
  for (const kind of ['view', 'alert'] as const) {
    const d = kind === 'view' ? diff.views : diff.alerts;
    lines.push(...d.added.map((n) => `+ ${kind} ${n}`), ...d.changed.map((n) => `~ ${kind} ${n}`), ...d.removed.map((n) => `- ${kind} ${n}`));
  }
  return lines.length === 0 ? 'no changes' : lines.join('\n');
}

/** A one-line summary for the log: `views added [a], changed [b]; alerts removed [c]`. */
export function summarizeDiff(diff: DefinitionsDiff): string {
  const part = (kind: string, d: NameDiff) => {
    const bits = (['added', 'changed', 'removed'] as const).filter((k) => d[k].length > 0).map((k) => `${k} ${d[k].join(', ')}`);
    return bits.length === 0 ? undefined : `${kind} ${bits.join('; ')}`;
  };
  return [part('views', diff.views), part('alerts', diff.alerts)].filter(Boolean).join(' | ') || 'no differences';
}
