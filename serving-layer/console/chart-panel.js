// A windowed view's measure over the last hour, one line per value of a dimension (top N).
import uPlot from '/vendor/uPlot.esm.js';
import { runSql } from './api.js';
import { byId, h } from './dom.js';
import { chartSql, rollupOf } from './sql.js';

const HOUR_MS = 3_600_000;
const TOP_N = 8;
const HEIGHT_PX = 260;
const PALETTE = ['#3b6ea5', '#d9822b', '#4a9d6f', '#b8474b', '#7e63b0', '#8c6d46', '#c9649f', '#6b7785'];

export class ChartPanel {
  constructor() {
    this.container = byId('chart');
    this.meta = byId('chart-meta');
    this.selects = { view: byId('chart-view'), measure: byId('chart-measure'), dimension: byId('chart-dimension') };
    this.views = [];
    this.selects.view.addEventListener('change', () => this.selectView());
    for (const select of Object.values(this.selects)) select.addEventListener('change', () => this.refresh());
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(this.container);
  }

  setViews(views) {
    const windowed = views.filter((v) => v.window && v.measures.length);
    const key = JSON.stringify(windowed.map((v) => [v.name, v.measures, v.dimensions]));
    if (key === this.viewsKey) return;
    this.viewsKey = key;
    this.views = windowed;
    fillSelect(this.selects.view, windowed.map((v) => [v.name, v.name]));
    this.selectView();
  }

  selectView() {
    const view = this.currentView();
    fillSelect(this.selects.measure, (view?.measures ?? []).map((m) => [m.name, m.kind ? `${m.name} (${m.kind})` : m.name]));
    fillSelect(this.selects.dimension, [['', '(total)'], ...(view?.dimensions ?? []).map((d) => [d, d])]);
    if (view?.dimensions.length) this.selects.dimension.value = this.selects.dimension.value || view.dimensions[0];
  }

  currentView() {
    return this.views.find((v) => v.name === this.selects.view.value);
  }

  async refresh() {
    const view = this.currentView();
    const measure = view?.measures.find((m) => m.name === this.selects.measure.value);
    if (!view || !measure) return this.show([], 'No windowed view to chart.');
    const dimension = this.selects.dimension.value;
    const sql = chartSql({ view: view.name, measure: measure.name, kind: measure.kind, dimension, sinceMs: Date.now() - HOUR_MS, topN: TOP_N });
    try {
      const { rows } = await runSql(sql);
      const label = `${rollupOf(measure.kind)}(${measure.name})${dimension ? ` by ${dimension}` : ''}`;
      this.show(rows, rows.length ? `${label}, top ${TOP_N}` : `No ${view.name} windows in the last hour.`);
    } catch (error) {
      this.show([], `Chart query failed: ${error.message}`);
    }
  }

  show(rows, text) {
    this.meta.textContent = text;
    const { names, data } = toSeries(rows);
    this.container.dataset.series = String(names.length);
    this.container.dataset.points = String(data[0].length);
    const key = names.join('\n');
    if (this.plot && key === this.seriesKey) return this.plot.setData(data);
    this.plot?.destroy();
    this.seriesKey = key;
    this.plot = new uPlot(options(names, this.size()), data, this.container);
  }

  size() {
    return { width: Math.max(320, this.container.clientWidth), height: HEIGHT_PX };
  }
}

function options(names, size) {
  const series = names.map((label, i) => ({ label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { size: 4 } }));
  return { ...size, series: [{ label: 'window' }, ...series], scales: { x: { time: true } }, legend: { live: true } };
}

/** Rows of (window_start, series, value) to uPlot's columns: x in epoch seconds, a y array per series. */
function toSeries(rows) {
  const xs = [...new Set(rows.map((r) => String(r[0])))].sort();
  const xIndex = new Map(xs.map((x, i) => [x, i]));
  const names = [...new Set(rows.map((r) => String(r[1])))];
  const ys = names.map(() => new Array(xs.length).fill(null));
  for (const [x, series, value] of rows) ys[names.indexOf(String(series))][xIndex.get(String(x))] = value === null ? null : Number(value);
  return { names, data: [xs.map((x) => parseUtcMs(x) / 1000), ...ys] };
}

/** DuckDB TIMESTAMPs are UTC; the API writes them with `Z`, but a bare one is read as UTC too. */
function parseUtcMs(text) {
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`);
}

function fillSelect(select, entries) {
  const previous = select.value;
  select.replaceChildren(...entries.map(([value, label]) => h('option', { value }, label)));
  if (entries.some(([value]) => value === previous)) select.value = previous;
}
