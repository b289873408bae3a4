// The console's entry point: builds the panels and keeps them fresh while the tab is visible.
import { AlertsPanel } from './alerts-panel.js';
import { getJson } from './api.js';
import { ChartPanel } from './chart-panel.js';
import { byId } from './dom.js';
import { QueryPanel } from './query-panel.js';
import { StatusPanel } from './status-panel.js';
import { normalizeViews, ViewsPanel } from './views-panel.js';

const REFRESH_INTERVAL_MS = 2_000;
const VIEWS_EVERY_TICKS = 5; // the view list changes rarely; re-rendering it often steals clicks

const query = new QueryPanel();
const viewsPanel = new ViewsPanel((text) => query.insert(text));
const chart = new ChartPanel();
const alerts = new AlertsPanel();
const status = new StatusPanel();

let ticks = 0;
let viewsLoaded = false;

async function refreshViews() {
  const views = normalizeViews(await getJson('/v1/views'));
  viewsPanel.render(views);
  query.setViews(views);
  chart.setViews(views);
  viewsLoaded = true;
}

async function tick() {
  if (!viewsLoaded || ticks++ % VIEWS_EVERY_TICKS === 0) await refreshViews();
  const results = await Promise.allSettled([status.refresh(), alerts.refresh(), chart.refresh()]);
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
}

function showState(state, detail = '') {
  const live = byId('live');
  live.dataset.state = state;
  live.textContent = state === 'live' ? `live · ${new Date().toLocaleTimeString()}` : `${state}${detail ? `: ${detail}` : ''}`;
  live.title = detail;
}

/** Runs `tick` every interval after the previous one settled; stops while the tab is hidden. */
function poll(intervalMs) {
  let timer;
  let running = false;
  async function loop() {
    timer = undefined;
    if (document.hidden) return showState('paused');
    running = true;
    try {
      await tick();
      showState(document.hidden ? 'paused' : 'live');
    } catch (error) {
      showState('error', error.message);
    } finally {
      running = false;
    }
    if (!document.hidden) timer = setTimeout(loop, intervalMs);
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = undefined;
      showState('paused');
    } else if (!timer && !running) {
      loop();
    }
  });
  loop();
}

poll(REFRESH_INTERVAL_MS);
