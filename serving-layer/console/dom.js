// DOM helpers. Data only ever reaches the page as text nodes or attribute values, never as HTML.

/** `h('td', { class: 'num' }, 'text', childNode)`; attributes are set with setAttribute. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

export function formatValue(value) {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Math.round(value * 1e6) / 1e6);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const NUMBER = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** A measure as people read it: grouped digits, at most two decimals; '–' when there is none. */
export function formatNumber(value) {
  return value === null || value === undefined || value === '' ? '–' : NUMBER.format(Number(value));
}

export function formatDurationMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1_000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

/** "12 s ago" for an epoch-ms number or an ISO string; '–' when unknown. */
export function formatAgo(when) {
  const ms = typeof when === 'number' ? when : Date.parse(when ?? '');
  return Number.isFinite(ms) ? `${formatDurationMs(Math.max(0, Date.now() - ms))} ago` : '–';
}

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT|FLOAT|DOUBLE|DECIMAL.*)$/i;

/** A result table: each header shows the column's name and DuckDB type. */
export function renderTable(columns, rows) {
  const numeric = columns.map((c) => NUMERIC.test(c.type ?? ''));
  const head = h('tr', {}, columns.map((c, i) =>
    h('th', { class: numeric[i] ? 'num' : undefined }, h('span', {}, c.name), h('small', { class: 'type' }, c.type ?? '')),
  ));
  const body = rows.map((row) => h('tr', {}, row.map((value, i) =>
    h('td', { class: value === null ? 'null' : numeric[i] ? 'num' : undefined }, formatValue(value)),
  )));
  return h('table', { class: 'data' }, h('thead', {}, head), h('tbody', {}, body));
}

/** Rows given as objects (as JSON APIs return them) turned into columns and rows. */
export function objectsToTable(objects) {
  const names = [...new Set(objects.flatMap((o) => Object.keys(o ?? {})))];
  return { columns: names.map((name) => ({ name, type: '' })), rows: objects.map((o) => names.map((n) => o?.[n] ?? null)) };
}

export function message(text, kind = 'hint') {
  return h('p', { class: kind }, text);
}
