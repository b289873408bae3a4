// Alert rules with the state of each key (coloured), and the recent transitions.
import { getJson, runSql } from './api.js';
import { byId, formatAgo, formatValue, h, message, objectsToTable, renderTable } from './dom.js';

const HISTORY_SQL = 'SELECT recorded_at, alert, "key", state, value FROM alert_history ORDER BY recorded_at DESC LIMIT 50';
const STATE_ORDER = ['firing', 'pending', 'resolved', 'inactive'];

export class AlertsPanel {
  constructor() {
    this.container = byId('alerts');
    this.history = byId('alert-history');
  }

  async refresh() {
    const json = await getJson('/v1/alerts');
    this.renderInstances(json?.rules ?? [], json?.instances ?? []);
    await this.renderHistory(json?.history);
  }

  renderInstances(rules, instances) {
    const rows = instances.map((i) => ({ ...i, rule: rules.find((r) => r.name === i.alert) }));
    for (const rule of rules) {
      if (!instances.some((i) => i.alert === rule.name)) rows.push({ alert: rule.name, state: 'inactive', rule });
    }
    if (rows.length === 0) return this.container.replaceChildren(message('No alert rules are defined.'));
    rows.sort((a, b) => rank(a.state) - rank(b.state) || String(a.alert).localeCompare(String(b.alert)));
    const head = h('tr', {}, ['Alert', 'State', 'Value'].map((t) => h('th', {}, t)));
    this.container.replaceChildren(h('table', { class: 'data alerts' }, h('thead', {}, head), h('tbody', {}, rows.map(instanceRow))));
  }

  async renderHistory(history) {
    try {
      const { columns, rows } = Array.isArray(history) ? objectsToTable(history) : await runSql(HISTORY_SQL);
      const times = columns.map((c) => /^TIMESTAMP/.test(c.type ?? ''));
      const shown = rows.map((row) => row.map((v, i) => (times[i] && v !== null ? new Date(v).toLocaleString() : v)));
      this.history.replaceChildren(rows.length ? renderTable(columns, shown) : message('No transitions yet.'));
    } catch (error) {
      this.history.replaceChildren(message(`History unavailable: ${error.message}`));
    }
  }
}

function instanceRow(instance) {
  const { rule } = instance;
  const state = String(instance.state ?? 'inactive');
  return h('tr', { 'data-alert': instance.alert, 'data-state': state },
    h('td', {}, h('strong', {}, instance.alert), h('small', { class: 'rule' }, pairs(instance.key)),
      rule ? h('small', { class: 'rule' }, `${rule.view ?? ''}: ${rule.condition ?? ''}`) : ''),
    h('td', {}, h('span', { class: `state state-${state}` }, state),
      h('small', { class: 'rule' }, [rule?.severity, instance.since === undefined ? '' : `since ${formatAgo(instance.since)}`].filter(Boolean).join(' · '))),
    h('td', { class: 'num measures' }, pairs(instance.value, '\n') || '–'),
  );
}

function pairs(object, separator = ', ') {
  if (object === null || object === undefined) return '';
  if (typeof object !== 'object') return formatValue(object);
  return Object.entries(object).map(([k, v]) => `${k}=${formatValue(v)}`).join(separator);
}

function rank(state) {
  const index = STATE_ORDER.indexOf(state);
  return index < 0 ? STATE_ORDER.length : index;
}
