import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { AlertEvaluator } from '../../serving-layer/alerts/alert-evaluator.ts';
import type { AlertRecord } from '../../serving-layer/alerts/alert-record.ts';
import { resolveAlertRules, unusedSketchMeasures } from '../../serving-layer/alerts/alert-rule.ts';
import { AlertStore } from '../../serving-layer/alerts/alert-store.ts';
import { AlertWindowCache } from '../../serving-layer/alerts/alert-window-cache.ts';
import { ViewFeeder, type TestEvent } from '../support/view-feeder.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';

const SECOND = 1_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);
const logger = createLogger('alerts-window-cache-test');

const CONFIG = `
source: {timestamp: ts, schema: {ts: TIMESTAMP, host: VARCHAR, errors: INTEGER, user_id: VARCHAR}}
views:
  errors_10s:
    window: 10s
    dimensions: [host]
    filter: "errors >= 0"
    measures: {errors: sum(errors), events: count(*), worst: max(errors), users: approx_count_distinct(user_id)}
alerts:
  burst: {view: errors_10s, window: 30s, where: "host <> 'h9'", condition: "errors > 20", clear: "errors < 10"}
  noisy: {view: errors_10s, window: 10s, condition: "events >= 3 AND users >= 2"}
`;

const comparable = (records: readonly AlertRecord[]) => records.map(({ seq: _seq, ...rest }) => rest);

describe('alert window cache', () => {
  it.each([
    ['with a rule using the distinct-count sketch', () => true],
    ['with the sketch unused (kept out of the cache)', (name: string) => name !== 'noisy'],
  ])('evaluates exactly as the batch and realtime tables do, across appends, compactions, late events and batch handoffs, %s', async (_what, keep) => {
    const loaded = parseConfig(CONFIG);
    const rules = resolveAlertRules(loaded).filter((r) => keep(r.name));
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            // false: another micro-batch in the same bucket (the same window: only what changed is judged)
            advance: fc.boolean(),
            events: fc.array(
            fc.record({
              host: fc.constantFrom('h1', 'h2', 'h3', 'h9', null),
              errors: fc.integer({ min: -1, max: 15 }),
              user: fc.constantFrom('a', 'b', 'c'),
              lateBuckets: fc.constantFrom(0, 0, 0, 1, 2, 9),
              partition: fc.integer({ min: 0, max: 2 }),
            }),
            { maxLength: 12 },
            ),
          }),
          { minLength: 5, maxLength: 30 },
        ),
        fc.integer({ min: 3, max: 25 }),
        async (batches, handOffAt) => {
          const db = await ServingDatabase.create(loaded);
          const feeder = new ViewFeeder(db.adminConnection, loaded.schema, db.bound, 4);
          const plainStore = await AlertStore.open(db, { file: ':memory:', catalog: 'plain' });
          const cachedStore = await AlertStore.open(db, { file: ':memory:', catalog: 'cached' });
          const cache = new AlertWindowCache(rules[0]!.view, 40 * SECOND, { unusedMeasures: unusedSketchMeasures(rules[0]!.view, rules), minCompactRows: 3, maxChangedShare: Infinity });
          const plainRecords: AlertRecord[] = [];
          const cachedRecords: AlertRecord[] = [];
          const plain = await AlertEvaluator.create({ database: db, rules, store: plainStore, logger, onRecords: (r) => plainRecords.push(...r) });
          const cached = await AlertEvaluator.create({
            database: db,
            rules,
            store: cachedStore,
            logger,
            windowCaches: new Map([['errors_10s', cache]]),
            onRecords: (r) => cachedRecords.push(...r),
          });
          try {
            let offset = 0;
            let bucket = 0;
            for (const [step, { advance, events: batch }] of batches.entries()) {
              if (advance && step > 0) bucket++;
              const bucketMs = T0 + bucket * 10 * SECOND;
              const events: TestEvent[] = batch.map((e) => ({
                ts: bucketMs - e.lateBuckets * 10 * SECOND + 1_000,
                host: e.host,
                errors: e.errors,
                user_id: e.user,
                partition: e.partition,
                offset: offset++,
              }));
              await feeder.toRealtime(events, (connection, relation) => cache.afterMicroBatch(connection, relation));
              if (step === handOffAt) await feeder.handOff(Math.floor(offset / 4));
              const nowMs = bucketMs + 2 * SECOND + step;
              await plain.evaluate(nowMs);
              await cached.evaluate(nowMs);
            }
            expect(cache.isReady).toBe(true);
            expect(rules.find((r) => r.name === 'burst')!.valueMeasures).toEqual(['errors', 'events', 'worst']);
            expect(rules.find((r) => r.name === 'noisy')?.valueMeasures ?? ['users']).toContain('users');
            expect(comparable(cachedRecords)).toEqual(comparable(plainRecords));
            const sorted = (e: AlertEvaluator) => e.instances().sort((a, b) => `${a.alert}${a.keyJson}`.localeCompare(`${b.alert}${b.keyJson}`));
            expect(sorted(cached)).toEqual(sorted(plain));
          } finally {
            await plain.close();
            await cached.close();
            await plainStore.close();
            await cachedStore.close();
            db.close();
          }
        },
      ),
      { numRuns: 12, endOnFailure: true },
    );
  }, 60_000);
});
