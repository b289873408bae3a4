// The SQL editor and its results table. Errors are shown where the results would be.
import { runSql } from './api.js';
import { byId, h, message, renderTable } from './dom.js';
import { exampleQueries } from './sql.js';

export class QueryPanel {
  constructor() {
    this.editor = byId('sql');
    this.result = byId('result');
    this.meta = byId('result-meta');
    this.examples = byId('examples');
    this.running = false;
    byId('run').addEventListener('click', () => this.run());
    this.editor.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.run();
      }
    });
    this.examples.addEventListener('change', () => this.useExample());
    this.result.replaceChildren(message('Write a query and press Run.'));
  }

  /** Inserts text at the cursor, replacing any selection. */
  insert(text) {
    const { selectionStart, selectionEnd } = this.editor;
    this.editor.setRangeText(text, selectionStart, selectionEnd, 'end');
    this.editor.focus();
  }

  setViews(views) {
    const key = views.map((v) => v.name).join('\n');
    if (key === this.viewsKey) return; // keep the open <select> steady across refreshes
    this.viewsKey = key;
    this.exampleSql = exampleQueries(views);
    const options = this.exampleSql.map(([label], i) => h('option', { value: String(i) }, label));
    this.examples.replaceChildren(h('option', { value: '' }, 'Examples…'), ...options);
    if (!this.editor.value && this.exampleSql.length) this.editor.value = this.exampleSql[0][1];
  }

  useExample() {
    const example = this.exampleSql?.[Number(this.examples.value)];
    this.examples.value = '';
    if (!example) return;
    this.editor.value = example[1];
    this.editor.focus();
  }

  async run() {
    const sql = this.editor.value.trim();
    if (!sql || this.running) return;
    this.running = true;
    this.meta.textContent = 'running…';
    const startedMs = performance.now();
    try {
      const { columns = [], rows = [], truncated } = await runSql(sql);
      const tookMs = Math.round(performance.now() - startedMs);
      this.meta.replaceChildren(`${rows.length} row${rows.length === 1 ? '' : 's'} · ${tookMs} ms`,
        truncated ? h('span', { class: 'warn', id: 'truncated' }, ' · truncated: only the first rows are shown') : '');
      this.result.replaceChildren(columns.length ? renderTable(columns, rows) : message('The statement returned no columns.'));
    } catch (error) {
      this.meta.textContent = error.status ? `failed (${error.status})` : 'failed';
      this.result.replaceChildren(message(error.message, 'error'));
    } finally {
      this.running = false;
    }
  }
}
