// The views with their schema and freshness. Clicking a view or column name inserts it into SQL.
import { byId, formatAgo, h, message } from './dom.js';
import { ident } from './sql.js';

/**
 * /v1/views made uniform: tolerant of missing fields and of measures given as names only. Each
 * measure keeps its rule (`aggregate` of `of`); `rollup` names the view's exact rollup macro.
 */
export function normalizeViews(json) {
  return (Array.isArray(json) ? json : json?.views ?? []).map((view) => {
    const columns = (view.columns ?? []).map((c) => (typeof c === 'string' ? { name: c, type: '' } : c));
    const dimensions = (view.dimensions ?? []).map((d) => (typeof d === 'string' ? d : d.name));
    const measures = (view.measures ?? []).map(normalizeMeasure);
    const windowMs = view.windowMs ?? null;
    return {
      name: view.name, window: view.window ?? windowLabel(windowMs), windowMs, columns, dimensions, measures,
      rollup: view.rollup ?? `rollup_${view.name}`, freshness: view.freshness ?? {},
      state: view.state ?? 'serving', backfill: view.backfill ?? null,
    };
  });
}

/** `1m` for a one-minute view, null for running totals. */
function windowLabel(ms) {
  if (!ms) return null;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]]) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function normalizeMeasure(measure) {
  if (typeof measure === 'string') return { name: measure, aggregate: undefined, of: undefined };
  const match = /^\s*(\w+)\s*\((.*)\)\s*$/.exec(measure.expression ?? '');
  const aggregate = measure.aggregate ?? measure.kind ?? match?.[1];
  return { name: measure.name, aggregate: aggregate?.toLowerCase(), of: measure.of ?? match?.[2] };
}

export class ViewsPanel {
  constructor(onInsert) {
    this.container = byId('views');
    this.onInsert = onInsert;
    this.closed = new Set(); // views the user folded; the rest show their columns
  }

  render(views) {
    if (views.length === 0) return this.container.replaceChildren(message('No views are defined.'));
    this.container.replaceChildren(...views.map((view) => this.viewNode(view)));
  }

  viewNode(view) {
    const details = h('details', { class: 'view', open: !this.closed.has(view.name) },
      h('summary', {}, this.nameButton(view.name, 'view-name'), h('span', { class: 'badge' }, view.window ? `window ${view.window}` : 'running totals')),
      view.backfill ? h('p', { class: 'backfill' }, backfillText(view)) : null,
      view.state === 'backfilling' ? null : h('p', { class: 'freshness' }, freshnessText(view.freshness)),
      h('ul', { class: 'columns' }, view.columns.map((c) => h('li', {}, this.nameButton(c.name, 'column-name'), h('small', { class: 'type' }, c.type)))),
    );
    details.addEventListener('toggle', () => (details.open ? this.closed.delete(view.name) : this.closed.add(view.name)));
    return details;
  }

  nameButton(name, cls) {
    const button = h('button', { type: 'button', class: `link ${cls}`, title: `Insert ${name}` }, name);
    button.addEventListener('click', (event) => {
      event.preventDefault(); // inside <summary> a click would also toggle the details
      this.onInsert(ident(name));
    });
    return button;
  }
}

/** An added view not exact yet, or a changed one whose new definition is being computed. */
export function backfillText(view) {
  const percent = `${Math.floor((view.backfill?.progress ?? 0) * 100)}%`;
  return view.state === 'backfilling'
    ? `backfilling ${percent}: queries answer once its history is computed`
    : `new definition backfilling ${percent}; the current one serves until then`;
}

function freshnessText(freshness) {
  const parts = [];
  if (freshness.realtimeUpdatedAtMs) parts.push(`realtime updated ${formatAgo(freshness.realtimeUpdatedAtMs)}`);
  if (freshness.batchVersion !== undefined && freshness.batchVersion !== null) parts.push(`batch v${freshness.batchVersion}`);
  if (freshness.newestEventMs !== undefined) parts.push(`newest event ${formatAgo(freshness.newestEventMs)}`);
  if (freshness.lagRecords !== undefined) parts.push(`lag ${freshness.lagRecords} records`);
  return parts.length ? parts.join(' · ') : 'freshness unknown';
}
