// Alert rules, each with a table of its keys (state, key, value, since), and the recent transitions.
import { getJson, runSql } from './api.js';
import { byId, formatAgo, formatDurationMs, formatNumber, formatValue, h, message } from './dom.js';

const HISTORY_SQL = `SELECT epoch_ms(recorded_at) AS at_ms, alert, CAST("key" AS VARCHAR) AS "key", state, CAST("value" AS VARCHAR) AS "value"
FROM alert_history ORDER BY recorded_at DESC LIMIT 50`;
const STATE_ORDER = ['firing', 'pending', 'resolved', 'inactive'];

export class AlertsPanel {
  constructor() {
    this.container = byId('alerts');
    this.history = byId('alert-history');
    this.historyTitle = byId('alert-history-title');
  }

  async refresh() {
    const json = await getJson('/v1/alerts');
    const rules = json?.rules ?? [];
    const instances = json?.instances ?? [];
    this.renderRules(rules, instances);
    await this.renderHistory(rules);
  }

  renderRules(rules, instances) {
    if (rules.length === 0) return this.container.replaceChildren(message('No alert rules are defined.'));
    const groups = rules.map((rule) => ({ rule, instances: instances.filter((i) => i.alert === rule.name).sort(byStateThenKey) }));
    groups.sort((a, b) => rank(worstState(a.instances)) - rank(worstState(b.instances)) || a.rule.name.localeCompare(b.rule.name));
    this.container.replaceChildren(...groups.map(ruleNode));
  }

  async renderHistory(rules) {
    try {
      const { rows } = await runSql(HISTORY_SQL);
      if (!rows.length) return this.history.replaceChildren(message('No transitions yet.'));
      const records = rows.map(([atMs, alert, key, state, value]) => ({ atMs: Number(atMs), alert, key: parseObject(key), state, value: parseObject(value) }));
      const alerts = [...new Set(records.map((r) => r.alert))];
      const shown = new Map(alerts.map((alert) => {
        const own = records.filter((r) => r.alert === alert);
        const rule = rules.find((r) => r.name === alert);
        return [alert, { dimensions: keyDimensions(rule, own.map((r) => r.key)), measures: valueMeasures(rule, own.map((r) => r.value)) }];
      }));
      const oneAlert = alerts.length === 1;
      const head = h('tr', {}, ['Time', oneAlert ? null : 'Alert', 'Key', 'State', 'Value'].filter(Boolean).map((t) => h('th', {}, t)));
      const body = records.map(({ atMs, alert, key, state, value }) => {
        const { dimensions, measures } = shown.get(alert);
        return h('tr', { 'data-alert': alert, 'data-state': state },
          h('td', { title: new Date(atMs).toLocaleString() }, new Date(atMs).toLocaleTimeString(undefined, { hour12: false })),
          oneAlert ? null : h('td', {}, alert),
          h('td', { title: JSON.stringify(key) }, dimensions.map((d) => formatValue(key[d])).join(' · ')),
          h('td', {}, stateChip(state)),
          h('td', { class: 'num', title: measures.join(', ') }, measures.map((m) => formatNumber(value[m])).join(' · ')));
      });
      this.historyTitle.textContent = oneAlert ? `History of ${alerts[0]}` : 'History';
      this.history.replaceChildren(h('table', { class: 'data history' }, h('thead', {}, head), h('tbody', {}, body)));
    } catch (error) {
      this.history.replaceChildren(message(`History unavailable: ${error.message}`));
    }
  }
}

/** One rule: its name, severity and condition, then a row per key that is not inactive. */
function ruleNode({ rule, instances }) {
  const state = worstState(instances);
  const counts = STATE_ORDER.map((s) => [s, instances.filter((i) => i.state === s).length]).filter(([, n]) => n > 0);
  const dimensions = keyDimensions(rule, instances.map((i) => i.key ?? {}));
  const measures = valueMeasures(rule, instances.map((i) => i.value ?? {}));
  const head = h('tr', {}, h('th', {}, 'State'), dimensions.map((d) => h('th', {}, d)),
    measures.map((m) => h('th', { class: 'num' }, m)), h('th', {}, 'Since'));
  const rows = instances.map((i) => h('tr', { 'data-alert': rule.name, 'data-state': i.state },
    h('td', {}, stateChip(i.state)),
    dimensions.map((d) => h('td', { 'data-key': d }, formatValue(i.key?.[d]))),
    measures.map((m) => h('td', { class: 'num', 'data-measure': m }, formatNumber(i.value?.[m]))),
    h('td', { title: new Date(i.since).toLocaleString() }, formatAgo(i.since))));
  return h('section', { class: 'alert-rule', 'data-rule': rule.name, 'data-state': state },
    h('div', { class: 'rule-head' }, h('strong', {}, rule.name), rule.severity ? h('span', { class: 'chip' }, rule.severity) : '',
      h('span', { class: 'rule-counts' }, counts.length ? counts.map(([s, n]) => `${n} ${s}`).join(' · ') : 'inactive')),
    h('p', { class: 'rule-condition' }, conditionText(rule)),
    rows.length ? h('div', { class: 'table-wrap instances' }, h('table', { class: 'data alerts' }, h('thead', {}, head), h('tbody', {}, rows)))
      : h('p', { class: 'hint' }, 'No key is pending or firing.'));
}

function conditionText(rule) {
  const parts = [`${rule.view ?? ''}${rule.where ? ` where ${rule.where}` : ''}: ${rule.condition ?? ''}`];
  if (rule.clear) parts.push(`clears when ${rule.clear}`);
  if (rule.forMs) parts.push(`for ${formatDurationMs(rule.forMs)}`);
  return parts.join(', ');
}

/**
 * The key's dimensions worth a column: all but those the rule's `where` names and every key has
 * the same value of (`page` in `where: page = '/checkout'`), which the condition line shows.
 */
function keyDimensions(rule, keys) {
  const all = [...new Set(keys.flatMap((k) => Object.keys(k ?? {})))];
  const pinned = (d) => mentions(rule?.where ?? '', d) && new Set(keys.map((k) => JSON.stringify(k?.[d]))).size === 1;
  const kept = all.filter((d) => !pinned(d));
  return kept.length ? kept : all;
}

function mentions(text, name) {
  return new RegExp(`\\b${name.replace(/[^\w]/g, '\\$&')}\\b`).test(text);
}

/** The measures a rule tests (named in its condition or clear), in the order the values give them. */
function valueMeasures(rule, values) {
  const names = [...new Set(values.flatMap((v) => Object.keys(v ?? {})))];
  const text = `${rule?.condition ?? ''} ${rule?.clear ?? ''}`;
  const tested = names.filter((n) => mentions(text, n));
  return tested.length ? tested : names;
}

function stateChip(state) {
  return h('span', { class: `state state-${state}` }, state);
}

function worstState(instances) {
  return instances.map((i) => i.state).sort((a, b) => rank(a) - rank(b))[0] ?? 'inactive';
}

function byStateThenKey(a, b) {
  return rank(a.state) - rank(b.state) || JSON.stringify(a.key).localeCompare(JSON.stringify(b.key));
}

function parseObject(json) {
  if (json && typeof json === 'object') return json;
  try {
    const value = JSON.parse(json ?? 'null');
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

function rank(state) {
  const index = STATE_ORDER.indexOf(state);
  return index < 0 ? STATE_ORDER.length : index;
}
