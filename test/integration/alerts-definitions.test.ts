import { describe, expect, it } from 'vitest';
import { parseConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { bindViews } from '../../core/views/bind-views.ts';
import { createBatchTableSql, createRealtimeTableSql, batchTable, realtimeTable } from '../../core/views/view-tables.ts';
import { Alerting, type AlertRulesChange } from '../../serving-layer/alerts/alerting.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { waitFor } from '../harness/wait-for.ts';
import { ViewFeeder, type TestEvent } from '../support/view-feeder.ts';
import { receiverPerSuite } from '../support/webhook-receiver.ts';

const SECOND = 1_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);
const logger = createLogger('alerts-definitions-test', { level: 'error' });

const SOURCE = `source: {timestamp: ts, schema: {ts: TIMESTAMP, host: VARCHAR, region: VARCHAR, errors: INTEGER}}`;
const VIEWS = `
views:
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors)}}
  by_region: {window: 10s, dimensions: [region], measures: {errors: sum(errors)}}`;

function definitions(alerts: Record<string, string>, views = VIEWS): LoadedConfig {
  const lines = Object.entries(alerts).map(([name, body]) => `  ${name}: ${body}`);
  return parseConfig(`${SOURCE}\n${views}\nalerts:${lines.length === 0 ? ' {}' : `\n${lines.join('\n')}`}\n`);
}

/** What the speed layer does: applyDefinitions inside its transaction, then commits (or rolls back). */
async function apply(db: ServingDatabase, alerting: Alerting, served: Pick<LoadedConfig, 'config' | 'views'>, options: { rollback?: boolean } = {}): Promise<AlertRulesChange> {
  const connection = db.adminConnection;
  await connection.run('BEGIN TRANSACTION');
  try {
    const change = await alerting.applyDefinitions(connection, served);
    await connection.run(options.rollback ? 'ROLLBACK' : 'COMMIT');
    return change;
  } catch (error) {
    await connection.run('ROLLBACK');
    throw error;
  }
}

/** A micro-batch as the speed layer commits it: realtime rows, then the alert window caches. */
async function microBatch(feeder: ViewFeeder, alerting: Alerting, events: readonly TestEvent[]): Promise<void> {
  await feeder.toRealtime(events, (connection, relation) => alerting.afterMicroBatch(connection, relation));
}

describe('alert rules following a new definitions version in place', () => {
  const suite = receiverPerSuite('alerts-definitions-');
  const hook = () => `{webhook: "${suite.receiver.url}", timeout: 5s}`;
  const delivered = (alert: string) => suite.receiver.received.filter((p) => p.alert === alert).map((p) => `${Object.values(p.key).join(',')} ${p.state}${p.reason ? ` (${p.reason})` : ''}`);

  it('keeps an unchanged firing rule firing with no second notification, applies a changed one at the next evaluation, resolves a removed one once, starts an added one', async () => {
    const rule = (view: string, condition: string, extra = '') => `{view: ${view}, condition: "${condition}"${extra}, notify: [${hook()}]}`;
    const before = definitions({
      stay: rule('errors_10s', 'errors > 5'),
      tighten: rule('errors_10s', 'errors > 100'),
      kept: rule('errors_10s', 'errors > 5'),
      relax: rule('errors_10s', 'errors > 5'),
      gone: rule('by_region', 'errors > 5'),
    });
    const db = await ServingDatabase.create(before);
    const alerting = await Alerting.start({ loaded: before, database: db, storageDir: ':memory:', logger });
    const feeder = new ViewFeeder(db.adminConnection, before.schema, db.bound);
    try {
      await microBatch(feeder, alerting, [{ ts: T0 + SECOND, host: 'h1', region: 'eu', errors: 9, offset: 0 }]);
      await alerting.evaluate(T0 + 2 * SECOND);
      await waitFor('the first firing notifications', () => suite.receiver.received.length === 4, 10_000);

      const after = definitions({
        stay: rule('errors_10s', 'errors > 5'),
        tighten: rule('errors_10s', 'errors > 5'),
        kept: rule('errors_10s', 'errors > 6', ', severity: critical'),
        relax: rule('errors_10s', 'errors > 50'),
        fresh: rule('by_region', 'errors > 5'),
      });
      const change = await apply(db, alerting, after);
      expect(change).toEqual({ added: ['fresh'], changed: ['kept', 'relax', 'tighten'], removed: ['gone'], unchanged: ['stay'], waiting: [] });

      // The same data, evaluated under the new rules, twice.
      await alerting.evaluate(T0 + 3 * SECOND);
      await alerting.evaluate(T0 + 4 * SECOND);
      await waitFor('the notifications of the new rules', () => suite.receiver.received.length === 8, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more arrives
      expect(delivered('stay')).toEqual(['h1 firing']);
      expect(delivered('kept')).toEqual(['h1 firing']); // still fires under the changed rule: no second page
      expect(delivered('relax')).toEqual(['h1 firing', 'h1 resolved']); // no longer matches: resolves as usual
      expect(delivered('tighten')).toEqual(['h1 firing']);
      expect(delivered('gone')).toEqual(['eu firing', 'eu resolved (rule removed)']);
      expect(delivered('fresh')).toEqual(['eu firing']);

      const api = await alerting.api();
      expect(api.rules.map((r) => [r.name, r.state])).toEqual([
        ['stay', 'evaluating'], ['tighten', 'evaluating'], ['kept', 'evaluating'], ['relax', 'evaluating'], ['fresh', 'evaluating'],
      ]);
      expect(api.rules.find((r) => r.name === 'kept')).toMatchObject({ severity: 'critical', condition: 'errors > 6', counts: { firing: 1 } });
      expect(api.instances.some((i) => i.alert === 'gone')).toBe(false);
      const reader = await db.connect();
      try {
        const history = (await reader.runAndReadAll(`SELECT state, reason FROM alert_history WHERE alert = 'gone' ORDER BY seq`)).getRowsJS();
        expect(history).toEqual([['firing', null], ['resolved', 'rule removed']]);
      } finally {
        reader.closeSync();
      }
    } finally {
      await alerting.close();
      db.close();
    }
  }, 30_000);

  it('keeps a rule on a backfilling view waiting, listed as such, then starts it once the view is served', async () => {
    suite.receiver.received.length = 0;
    const loaded = definitions({});
    const db = await ServingDatabase.create(loaded);
    const alerting = await Alerting.start({ loaded, database: db, storageDir: ':memory:', logger });
    const feeder = new ViewFeeder(db.adminConnection, loaded.schema, db.bound);
    try {
      const withRule = definitions({ late: `{view: by_region, condition: "errors > 5", notify: [${hook()}]}` });
      const errorsOnly = withRule.views.filter((v) => v.definition.name === 'errors_10s');
      expect(await apply(db, alerting, { config: withRule.config, views: errorsOnly })).toEqual({ added: [], changed: [], removed: [], unchanged: [], waiting: ['late'] });
      await microBatch(feeder, alerting, [{ ts: T0 + SECOND, host: 'h1', region: 'eu', errors: 9, offset: 0 }]);
      await alerting.evaluate(T0 + 2 * SECOND);
      expect((await alerting.api()).rules).toEqual([expect.objectContaining({ name: 'late', state: 'waiting: view by_region is backfilling', view: 'by_region' })]);

      expect(await apply(db, alerting, withRule)).toEqual({ added: ['late'], changed: [], removed: [], unchanged: [], waiting: [] });
      await alerting.evaluate(T0 + 3 * SECOND);
      await waitFor('the rule firing once its view is served', () => suite.receiver.received.length === 1, 10_000);
      expect(delivered('late')).toEqual(['eu firing']);
      expect((await alerting.api()).rules.map((r) => [r.name, r.state])).toEqual([['late', 'evaluating']]);
    } finally {
      await alerting.close();
      db.close();
    }
  }, 30_000);

  it('keeps evaluating a rule whose view definition was swapped in, from a window cache rebuilt for the new definition, without paging again', async () => {
    suite.receiver.received.length = 0;
    const rules = { burst: `{view: errors_10s, window: 30s, condition: "errors > 5", notify: [${hook()}]}` };
    const loaded = definitions(rules);
    const db = await ServingDatabase.create(loaded);
    const alerting = await Alerting.start({ loaded, database: db, storageDir: ':memory:', logger });
    const events: TestEvent[] = [{ ts: T0 + SECOND, host: 'h1', region: 'eu', errors: 9, offset: 0 }];
    try {
      await microBatch(new ViewFeeder(db.adminConnection, loaded.schema, db.bound), alerting, events);
      await microBatch(new ViewFeeder(db.adminConnection, loaded.schema, db.bound), alerting, []); // the cache is ready from here on
      await alerting.evaluate(T0 + 2 * SECOND);
      await waitFor('h1 firing', () => suite.receiver.received.length === 1, 10_000);
      const oldHash = alerting.windowCache('errors_10s')!.view.definitionHash;

      // The swap of a changed view: its state tables replaced by the new definition's, recomputed
      // over every event, and the rules told, in one transaction.
      const redefined = definitions(rules, VIEWS.replace('measures: {errors: sum(errors)}}', 'measures: {errors: sum(errors), events: count(*)}}'));
      const bound = await bindViews(redefined, db.adminConnection);
      const connection = db.adminConnection;
      await connection.run('BEGIN TRANSACTION');
      for (const view of bound.filter((b) => b.view.definition.name === 'errors_10s')) {
        await connection.run(`DROP TABLE ${batchTable('errors_10s')}`);
        await connection.run(`DROP TABLE ${realtimeTable('errors_10s')}`);
        await connection.run(createBatchTableSql(view));
        await connection.run(createRealtimeTableSql(view));
      }
      const feeder = new ViewFeeder(connection, redefined.schema, bound.filter((b) => b.view.definition.name === 'errors_10s'));
      await feeder.toRealtime(events);
      const change = await alerting.applyDefinitions(connection, redefined);
      await connection.run('COMMIT');
      expect(change).toEqual({ added: [], changed: ['burst'], removed: [], unchanged: [], waiting: [] });

      // h2 crosses the threshold after the swap; h1 still does.
      const more: TestEvent[] = [{ ts: T0 + 5 * SECOND, host: 'h2', region: 'us', errors: 7, offset: 1 }];
      events.push(...more);
      await microBatch(feeder, alerting, more);
      await alerting.evaluate(T0 + 6 * SECOND);
      await waitFor('h2 firing', () => suite.receiver.received.length === 2, 10_000);
      const cache = alerting.windowCache('errors_10s')!;
      expect(cache.view.definitionHash).not.toBe(oldHash);
      expect(cache.isReady).toBe(true);
      // The window's values come from the new definition (an independent count of the events).
      const h2 = suite.receiver.received.find((p) => p.key.host === 'h2')!;
      expect(h2.value).toEqual({ errors: 7, events: events.filter((e) => e.host === 'h2').length });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(delivered('burst')).toEqual(['h1 firing', 'h2 firing']);
    } finally {
      await alerting.close();
      db.close();
    }
  }, 30_000);

  it('leaves the rules as they were when the transaction that changed them rolled back', async () => {
    suite.receiver.received.length = 0;
    const loaded = definitions({ stay: `{view: errors_10s, condition: "errors > 5", notify: [${hook()}]}` });
    const db = await ServingDatabase.create(loaded);
    const alerting = await Alerting.start({ loaded, database: db, storageDir: ':memory:', logger });
    const feeder = new ViewFeeder(db.adminConnection, loaded.schema, db.bound);
    try {
      await microBatch(feeder, alerting, [{ ts: T0 + SECOND, host: 'h1', region: 'eu', errors: 9, offset: 0 }]);
      await alerting.evaluate(T0 + 2 * SECOND);
      await waitFor('h1 firing', () => suite.receiver.received.length === 1, 10_000);

      expect((await apply(db, alerting, definitions({}), { rollback: true })).removed).toEqual(['stay']);
      await microBatch(feeder, alerting, [{ ts: T0 + 2 * SECOND, host: 'h1', region: 'eu', errors: 1, offset: 1 }]);
      await alerting.evaluate(T0 + 3 * SECOND);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(delivered('stay')).toEqual(['h1 firing']);
      expect((await alerting.api()).rules.map((r) => r.name)).toEqual(['stay']);
      // A later change is measured against the rules that really run.
      expect((await apply(db, alerting, definitions({}))).removed).toEqual(['stay']);
    } finally {
      await alerting.close();
      db.close();
    }
  }, 30_000);
});
