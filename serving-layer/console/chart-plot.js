// The uPlot chart of one measure: a line per series told apart by colour and marker, the window
// still filling shaded and its segment dotted, and a legend of our own that wraps (never clips)
// and shows the values of the hovered window, or of the newest complete one.
import uPlot from '/vendor/uPlot.esm.js';
import { splitAtFilling } from './chart-series.js';
import { formatNumber, h } from './dom.js';

const PALETTE = ['#3b6ea5', '#d9822b', '#4a9d6f', '#b8474b', '#7e63b0', '#8c6d46', '#c9649f', '#6b7785'];
const FILLING_DASH = [2, 4];
/** Series i: its colour, and a filled or hollow marker so neighbours differ beyond colour. */
export function seriesStyle(i) {
  return { color: PALETTE[i % PALETTE.length], hollow: i % 2 === 1 };
}

export class ChartPlot {
  constructor(container, legend) {
    this.container = container;
    this.legend = legend;
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(container);
  }

  /** `data` from toChartData. Rebuilt when the series change, else only given new data. */
  render(data) {
    this.data = data;
    const columns = [data.xsMs.map((x) => x / 1000)];
    for (const name of data.names) {
      const { complete, filling } = splitAtFilling(data.values[name], data.fillingIndex);
      columns.push(complete, filling);
    }
    const key = data.names.join('\n');
    if (this.plot && key === this.seriesKey) this.plot.setData(columns);
    else {
      this.plot?.destroy();
      this.seriesKey = key;
      this.plot = new uPlot(this.options(data.names), columns, this.container);
      this.band = h('div', { class: 'filling-band', 'aria-hidden': 'true' });
      this.bandLabel = h('div', { class: 'filling-label' }, 'still filling');
      this.plot.over.append(this.band, this.bandLabel);
    }
    this.placeBand();
    // A refresh under the pointer keeps showing the hovered window (uPlot parks the cursor at a negative left when it leaves).
    const { left, idx } = this.plot.cursor;
    this.renderLegend(left >= 0 ? idx ?? null : null);
  }

  options(names) {
    const series = [{ label: 'window' }];
    names.forEach((label, i) => {
      const { color, hollow } = seriesStyle(i);
      const points = { size: 6, width: 1.5, stroke: color, fill: hollow ? '#fff' : color };
      series.push({ label, stroke: color, width: 2, points },
        { label: `${label} (still filling)`, stroke: color, width: 2, dash: FILLING_DASH, points: { ...points, fill: '#fff' } });
    });
    return {
      ...this.size(),
      series,
      legend: { show: false },
      axes: [{ space: 80 }, {}], // time labels such as 10:05am need ~70 px each
      cursor: { drag: { x: false, y: false } },
      // The x axis reaches the end of the window still filling, so its shaded band is visible.
      scales: { x: { time: true, range: (u, min, max) => [min, this.xMaxSeconds(max)] } },
      hooks: {
        setCursor: [(u) => this.renderLegend(u.cursor.idx ?? null)],
        draw: [() => this.placeBand()],
      },
    };
  }

  xMaxSeconds(max) {
    const { endsMs, fillingIndex } = this.data ?? {};
    return fillingIndex === null || !endsMs ? max : Math.max(max, endsMs.at(-1) / 1000);
  }

  /** The shaded band over the window still filling, in the plot's CSS pixels. */
  placeBand() {
    const { plot, data } = this;
    if (!plot || !this.band) return;
    const filling = data.fillingIndex;
    this.container.dataset.fillingStart = filling === null ? '' : new Date(data.xsMs[filling]).toISOString();
    this.band.hidden = this.bandLabel.hidden = filling === null;
    if (filling === null) return;
    const left = Math.max(0, plot.valToPos(data.xsMs[filling] / 1000, 'x'));
    const right = Math.min(plot.over.clientWidth, plot.valToPos(data.endsMs.at(-1) / 1000, 'x'));
    Object.assign(this.band.style, { left: `${left}px`, width: `${Math.max(2, right - left)}px` });
  }

  /** The legend: each series' swatch, name and value at window `idx` (default: newest complete). */
  renderLegend(idx) {
    const { data } = this;
    if (!data) return;
    const last = data.xsMs.length - 1;
    const shown = idx ?? (data.fillingIndex === null ? last : Math.max(0, data.fillingIndex - 1));
    const filling = data.fillingIndex !== null && shown >= data.fillingIndex;
    const when = data.xsMs.length ? `${timeText(data.xsMs[shown])}–${timeText(data.endsMs[shown])}${filling ? ' (still filling)' : ''}` : '';
    this.legend.dataset.windowStart = data.xsMs.length ? new Date(data.xsMs[shown]).toISOString() : '';
    this.legend.dataset.hover = String(idx !== null);
    this.legend.replaceChildren(
      h('span', { class: 'legend-when' }, when),
      ...data.names.map((name, i) => {
        const { color, hollow } = seriesStyle(i);
        const value = data.values[name][shown];
        return h('span', { class: 'legend-item', 'data-series': name, 'data-value': value ?? '' },
          h('span', { class: `swatch${hollow ? ' hollow' : ''}`, style: `--c: ${color}` }),
          h('span', { class: 'legend-name', title: name }, name),
          h('span', { class: 'legend-value' }, formatNumber(value)));
      }),
    );
  }

  size() {
    return { width: Math.max(240, this.container.clientWidth), height: Math.max(180, this.container.clientHeight) };
  }
}

function timeText(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
