// A windowed view's measure over the last hour, one line per value of a dimension (top N), each
// window's value from the view's rollup: every measure merged by its own rule, exact.
import { runSql } from './api.js';
import { ChartPlot } from './chart-plot.js';
import { toChartData } from './chart-series.js';
import { byId, formatNumber, h } from './dom.js';
import { chartSql } from './sql.js';

const HOUR_MS = 3_600_000;
const TOP_N = 8;

export class ChartPanel {
  constructor() {
    this.container = byId('chart');
    this.title = byId('chart-title');
    this.meta = byId('chart-meta');
    this.values = byId('chart-values');
    this.plot = new ChartPlot(this.container, byId('chart-legend'));
    this.selects = { view: byId('chart-view'), measure: byId('chart-measure'), dimension: byId('chart-dimension') };
    this.views = [];
    this.selects.view.addEventListener('change', () => this.selectView());
    for (const select of Object.values(this.selects)) select.addEventListener('change', () => this.refresh());
    this.values.addEventListener('toggle', () => this.renderValues());
  }

  setViews(views) {
    const windowed = views.filter((v) => v.window && v.measures.length && v.state !== 'backfilling');
    const key = JSON.stringify(windowed.map((v) => [v.name, v.measures, v.dimensions, v.rollup]));
    if (key === this.viewsKey) return;
    this.viewsKey = key;
    this.views = windowed;
    fillSelect(this.selects.view, windowed.map((v) => [v.name, v.name]));
    this.selectView();
  }

  selectView() {
    const view = this.currentView();
    fillSelect(this.selects.measure, (view?.measures ?? []).map((m) => [m.name, m.name]));
    fillSelect(this.selects.dimension, [['', '(all together)'], ...(view?.dimensions ?? []).map((d) => [d, d])]);
    if (view?.dimensions.length) this.selects.dimension.value = this.selects.dimension.value || view.dimensions[0];
  }

  currentView() {
    return this.views.find((v) => v.name === this.selects.view.value);
  }

  async refresh() {
    const view = this.currentView();
    const measure = view?.measures.find((m) => m.name === this.selects.measure.value);
    if (!view || !measure) return this.show(null, [], 'No windowed view to chart.');
    const dimension = this.selects.dimension.value;
    const windowMs = view.windowMs || 60_000;
    const sinceMs = Math.floor((Date.now() - HOUR_MS) / windowMs) * windowMs;
    try {
      const { rows } = await runSql(chartSql({ view, measure: measure.name, dimension, sinceMs, topN: TOP_N }));
      const total = Number(rows[0]?.[4] ?? 0);
      const shown = Math.min(total, TOP_N);
      const series = !dimension ? '' : shown < total
        ? ` · the ${shown} ${dimension} values with the highest ${measure.name} over the hour (of ${total})`
        : ` · all ${total} ${dimension} values`;
      const meta = rows.length ? `Last hour, each window exact, from ${view.rollup}${series}.` : `No ${view.name} windows in the last hour.`;
      this.container.dataset.since = new Date(sinceMs).toISOString();
      this.show({ view, measure, dimension }, rows, meta);
    } catch (error) {
      this.show(null, [], `Chart query failed: ${error.message}`);
    }
  }

  show(what, rows, metaText) {
    this.title.textContent = what ? titleOf(what) : 'Chart';
    this.container.setAttribute('aria-label', this.title.textContent);
    this.meta.textContent = metaText;
    const data = toChartData(rows, Date.now());
    this.container.dataset.series = String(data.names.length);
    this.container.dataset.points = String(data.xsMs.length);
    this.data = data;
    this.plot.render(data);
    this.renderValues();
  }

  /** The plotted values as a table, for reading exact numbers (built only while it is open). */
  renderValues() {
    const wrap = this.values.querySelector('.table-wrap');
    if (!this.values.open || !this.data) return wrap.replaceChildren();
    const { xsMs, names, values, fillingIndex } = this.data;
    const head = h('tr', {}, h('th', {}, 'window'), names.map((n) => h('th', { class: 'num' }, n)));
    const body = xsMs.map((x, i) => h('tr', { 'data-window-start': new Date(x).toISOString(), 'data-filling': String(fillingIndex !== null && i >= fillingIndex) },
      h('td', {}, `${new Date(x).toLocaleTimeString()}${fillingIndex !== null && i >= fillingIndex ? ' (still filling)' : ''}`),
      names.map((n) => h('td', { class: 'num', 'data-series': n, 'data-value': values[n][i] ?? '' }, formatNumber(values[n][i]))),
    )).reverse();
    wrap.replaceChildren(h('table', { class: 'data' }, h('thead', {}, head), h('tbody', {}, body)));
  }
}

/** What the chart shows, in words: `avg_latency: avg(latency_ms) per 1m window, by country`. */
function titleOf({ view, measure, dimension }) {
  const rule = measure.aggregate ? `${measure.aggregate}(${measure.of ?? ''})` : measure.name;
  return `${measure.name}: ${rule} per ${view.window} window, ${dimension ? `by ${dimension}` : `all ${view.name} together`}`;
}

function fillSelect(select, entries) {
  const previous = select.value;
  select.replaceChildren(...entries.map(([value, label]) => h('option', { value }, label)));
  if (entries.some(([value]) => value === previous)) select.value = previous;
}
