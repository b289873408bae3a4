import Table from 'cli-table3';
import { Option, type Command } from 'commander';
import { formatDurationMs, formatExactDurationMs } from '../../core/config/duration.ts';
import type { StatusInfo, ViewInfo } from '../../serving-layer/http/api-types.ts';
import { ServingClient } from '../../serving-layer/http/serving-client.ts';
import { QueryError } from '../../core/errors/index.ts';
import { nodeOptions } from './query-command.ts';
import { nodeUrl } from './node-url.ts';

/** `lambda status`: the node's role, batch version and cuts, lag, freshness, rejects, members and views. */
export function registerStatusCommand(program: Command): void {
  nodeOptions(
    program
      .command('status')
      .description('print the status of a running node: batch master, batch version and age, lag, freshness, members, views')
      .addOption(new Option('--json', 'print the raw JSON of GET /v1/status and GET /v1/views')),
  ).action(async (options: { url?: string; config?: string; token?: string; json?: boolean }) => {
    const client = new ServingClient({ url: await nodeUrl(options), ...(options.token ? { token: options.token } : {}) });
    const [status, views] = await Promise.all([client.status(), viewsOf(client)]);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ status, views }, null, 2)}\n`);
      return;
    }
    process.stdout.write(renderStatus(status, views));
  });
}

/** A node without the serving role has no views (its `GET /v1/views` answers 404). */
async function viewsOf(client: ServingClient): Promise<ViewInfo[]> {
  try {
    return await client.views();
  } catch (error) {
    if (error instanceof QueryError && error.context['status'] === 404) return [];
    throw error;
  }
}

/** Fields the engine leaves out print as "—", so an older or partial status still prints. */
export function renderStatus(status: StatusInfo, views: readonly ViewInfo[]): string {
  const lines: [string, string][] = [
    ['node', `${status.nodeId ?? '—'} (${status.mode ?? 'unknown mode'})${status.isMaster ? ', batch master' : ''}`],
    ['roles', list(status.roles)],
    ['batch', batchLine(status)],
    ...(status.definitions ? [['definitions', definitionsLine(status.definitions)] as [string, string]] : []),
    ['lag', status.lag ? `${count(status.lag.records)} records${partitions(status.lag.byPartition)}` : '—'],
    ['freshness', status.freshness ? `realtime updated ${ago(status.freshness.realtimeAgeMs)}` : '—'],
    ['rejected', status.rejected ? `${status.rejected.total}${reasons(status.rejected.byReason)}${notKept(status.rejected.notKept)}` : '—'],
    ...(status.events ? [['events', eventsLine(status.events)] as [string, string]] : []),
    ...(status.refusedAtIngest?.total ? [['refused', `${status.refusedAtIngest.total} lines at POST /v1/events${reasons(status.refusedAtIngest.byReason)}`] as [string, string]] : []),
    ...(status.archiver ? [['archiving', archiving(status.archiver)] as [string, string]] : []),
  ];
  const width = Math.max(...lines.map(([key]) => key.length));
  let out = lines.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
  const members = status.members ?? [];
  out += `\n\nmembers (${members.length})\n`;
  const memberTable = table(['id', 'master', 'roles', 'url', 'archives', 'definitions']);
  for (const m of members) {
    const definitions = m.definitionsVersion === null || m.definitionsVersion === undefined ? '—' : `v${m.definitionsVersion}`;
    memberTable.push([m.id, m.isMaster ? 'yes' : '', list(m.roles), m.url ?? '—', m.partitions?.length ? m.partitions.map((p) => `p${p}`).join(' ') : '—', definitions]);
  }
  out += `${memberTable.toString()}\n\nviews (${views.length})\n`;
  const viewTable = table(['view', 'state', 'window', 'columns', 'batch version', 'realtime updated', 'age']);
  for (const v of views) {
    viewTable.push([
      v.name,
      viewState(v),
      v.windowMs === null ? 'none' : formatExactDurationMs(v.windowMs),
      (v.columns ?? []).map((c) => c.name).join(', '),
      v.freshness?.batchVersion === null || v.freshness?.batchVersion === undefined ? '—' : `v${v.freshness.batchVersion}`,
      v.freshness?.realtimeUpdatedAtMs ? new Date(v.freshness.realtimeUpdatedAtMs).toISOString() : '—',
      duration(v.freshness?.ageMs),
    ]);
  }
  return `${out}${viewTable.toString()}\n`;
}

/** `serving`, `backfilling 42%`, or `serving; new definition 42%` (issue 16). */
function viewState(view: ViewInfo): string {
  const percent = view.backfill ? `${Math.floor(view.backfill.progress * 100)}%` : '';
  if (view.state === 'backfilling') return `backfilling ${percent}`;
  return view.backfill ? `serving; new definition ${percent}` : 'serving';
}

/** Whether this node runs the published definitions (it follows them within seconds). */
function definitionsLine(definitions: NonNullable<StatusInfo['definitions']>): string {
  const { version, running } = definitions;
  if (version === null) return `this node runs v${running}; the published version is unknown (ZooKeeper did not answer)`;
  return version === running ? `v${version}, which this node runs` : `v${version} published; this node runs v${running} (it follows in seconds; if it stays behind, its log says why)`;
}

/**
 * The tail's fill, and whether `events` lags the views: then SQL over `events` misses
 * `lagRecords` records the views count, until the archive reaches what the speed layer consumed.
 */
function eventsLine(events: NonNullable<StatusInfo['events']>): string {
  const tail = `tail ${thousands(events.tailRows)} rows`;
  const recent = events.maxRecentRows ? ` not archived + ${thousands(events.maxRecentRows)} recent archived` : '';
  if (!events.lagging) return `${tail} (limit ${thousands(events.maxTailRows)}${recent})`;
  return `lagging ${thousands(events.lagRecords)} records behind the views (tail limit ${thousands(events.maxTailRows)} rows); ${tail}`;
}

function thousands(n: number): string {
  return n.toLocaleString('en-US');
}

function archiving(archiver: NonNullable<StatusInfo['archiver']>): string {
  if (archiver.partitions.length === 0) return 'no partition held';
  const gaps = archiver.gapOffsets > 0 ? `; ${archiver.gapOffsets} offsets lost to retention` : '';
  return `${archiver.partitions.map((p) => `p${p.partition}<${p.archivedEndExclusive}`).join(' ')} (archived below)${gaps}`;
}

function batchLine(status: StatusInfo): string {
  const batch = status.batch;
  if (!batch || batch.version === null || batch.version === undefined) return 'no batch version published yet';
  const error = batch.lastError ? `; last run failed: ${batch.lastError}` : '';
  return `v${batch.version}, published ${ago(batch.ageMs)}; cuts${partitions(batch.cuts) || ' —'}${error}`;
}

function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [], compact: true } });
}

function list(values: readonly string[] | undefined): string {
  return values && values.length > 0 ? values.join(', ') : '—';
}

function partitions(byPartition: Readonly<Record<string, number>> | undefined): string {
  const entries = Object.entries(byPartition ?? {}).sort(([a], [b]) => Number(a) - Number(b));
  return entries.length === 0 ? '' : ` (${entries.map(([p, n]) => `p${p}=${n}`).join(' ')})`;
}

function reasons(byReason: Readonly<Record<string, number>> | undefined): string {
  const entries = Object.entries(byReason ?? {}).filter(([, n]) => n > 0);
  return entries.length === 0 ? '' : ` (${entries.map(([reason, n]) => `${reason} ${n}`).join(', ')})`;
}

function notKept(n: number | undefined): string {
  return n ? `, ${n} counted but not kept as rows (speed.maxRejectedKept)` : '';
}

function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : String(n);
}

function duration(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '—' : formatDurationMs(ms);
}

function ago(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? 'never' : `${formatDurationMs(ms)} ago`;
}
