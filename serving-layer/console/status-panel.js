// The node's status: batch master or not, batch version and age, lag, rejected records, whether
// `events` lags the views, members.
import { getJson } from './api.js';
import { byId, formatAgo, formatDurationMs, formatValue, h } from './dom.js';

export class StatusPanel {
  constructor() {
    this.container = byId('status');
    this.summary = byId('summary');
  }

  async refresh() {
    const status = (await getJson('/v1/status')) ?? {};
    const batch = status.batch ?? {};
    const rejected = status.rejected ?? {};
    const rows = [
      ['Node', `${status.isMaster ? 'batch master' : 'not the batch master'}${status.roles?.length ? ` · ${status.roles.join(', ')}` : ''}`],
      ['Batch', batch.version === undefined || batch.version === null ? 'no batch published yet' : `version ${batch.version} · ${formatDurationMs(batch.ageMs)} old`],
      ['Cuts', pairs(batch.cuts)],
      ['Lag', status.lag?.records === undefined ? pairs(status.lag) : `${status.lag.records ?? '?'} records behind`],
      ['Freshness', status.freshness?.realtimeAgeMs === undefined ? pairs(status.freshness) : `realtime ${formatDurationMs(status.freshness.realtimeAgeMs)} old`],
      ['Rejected', `${rejected.total ?? 0} records${pairs(rejected.byReason) ? ` · ${pairs(rejected.byReason)}` : ''}`],
      ['Events', eventsText(status.events)],
      ['Members', (status.members ?? []).map(memberText).join('\n')],
    ];
    this.container.replaceChildren(h('dl', { class: 'status' },
      rows.filter(([, value]) => value).map(([term, value]) => [h('dt', {}, term), h('dd', { 'data-field': term.toLowerCase() }, value)])));
    this.renderSummary(status, batch, rejected);
  }

  renderSummary(status, batch, rejected) {
    this.summary.replaceChildren(
      chip(status.isMaster ? 'master' : 'follower', status.isMaster ? 'ok' : ''),
      chip(batch.version === undefined || batch.version === null ? 'no batch yet' : `batch v${batch.version} · ${formatDurationMs(batch.ageMs)}`),
      chip(`rejected ${rejected.total ?? 0}`, rejected.total ? 'warn' : ''),
      // Only while it lags: SQL over `events` then disagrees with the views, and an analyst
      // comparing the two must see why.
      ...(status.events?.lagging
        ? [h('span', { class: 'chip warn', 'data-badge': 'events-lagging', title: LAGGING_HELP }, `events lagging ${count(status.events.lagRecords)} records`)]
        : []),
    );
  }
}

const LAGGING_HELP = 'SELECT … FROM events misses records the views count: the speed layer\'s tail of not-yet-archived events is full '
  + '(speed.maxEventsTail). The views stay exact; events is complete again once the archive catches up.';

/** The tail's fill; while `events` lags, how far. Empty when the node has no speed layer. */
function eventsText(events) {
  if (!events) return '';
  const recent = events.maxRecentRows ? ` not archived + ${count(events.maxRecentRows)} recent` : '';
  const tail = `tail ${count(events.tailRows)} rows (limit ${count(events.maxTailRows)}${recent})`;
  return events.lagging ? `lagging ${count(events.lagRecords)} records behind the views · ${tail}` : `complete · ${tail}`;
}

function count(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '?';
}

function chip(text, kind = '') {
  return h('span', { class: `chip ${kind}` }, text);
}

function memberText(member) {
  if (typeof member !== 'object' || member === null) return String(member);
  const name = member.id ?? member.address ?? member.host ?? '?';
  const roles = Array.isArray(member.roles) ? ` (${member.roles.join(', ')})` : '';
  return `${name}${roles}${member.isMaster ? ' · master' : ''}`;
}

/** `key=value` pairs; numbers under a key ending in `Ms` read as a time (epoch) or a duration. */
function pairs(object) {
  if (object === null || object === undefined || typeof object !== 'object') return object === undefined ? '' : formatValue(object);
  return Object.entries(object).map(([key, value]) => pair(key, value)).join(', ');
}

function pair(key, value) {
  if (typeof value !== 'number' || !key.endsWith('Ms')) return `${key}=${formatValue(value)}`;
  return `${key.slice(0, -2)} ${value > 1e12 ? formatAgo(value) : formatDurationMs(value)}`;
}
