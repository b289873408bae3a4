import type { RejectReason } from '../../core/events/decode-event.ts';
import { seededRandom } from '../../core/random/seeded-random.ts';

/**
 * Test events for the views of test/fixtures/foundation.yaml (schema ts, user_id, page, country,
 * latency_ms, amount), and a plain JavaScript computation of those views to compare the speed
 * layer with. The generator knows which records are good and why the others are bad, so the
 * reference needs no decoder. Amounts are quarters and latencies halves: exact in binary floating
 * point, so sums are equal whatever order they are added in.
 */
export interface GoodEvent {
  readonly tsMs: number;
  readonly user_id: string | null;
  readonly page: string | null;
  readonly country: string | null;
  readonly latency_ms: number | null;
  readonly amount: number | null;
}

export interface GeneratedRecord {
  /** The Kafka record value. */
  readonly value: Buffer | null;
  /** The event it carries, or why it must be rejected. */
  readonly event?: GoodEvent;
  readonly reject?: RejectReason;
}

const PAGES = ['/', '/home', '/checkout', '/cart', '/search', '/p/ü-ñ', "/it's"];
const COUNTRIES = ['US', 'DE', 'FR', 'JP', 'BR', null];
export const EVENTS_BASE_MS = Date.UTC(2026, 10, 21, 9, 0, 0);


const BAD_RECORDS: readonly { reject: RejectReason; value: (n: number) => Buffer | null }[] = [
  { reject: 'invalid_json', value: (n) => Buffer.from(`{"ts": ${n}, "page": "/broken"`) },
  { reject: 'invalid_json', value: (n) => Buffer.from(`{"ts":${EVENTS_BASE_MS + n},"amount":NaN}`) },
  { reject: 'invalid_json', value: (n) => Buffer.from(`{"ts":${EVENTS_BASE_MS + n},"page":"/x",}`) },
  { reject: 'missing_timestamp', value: () => Buffer.from('{"page":"/home","amount":1.25}') },
  { reject: 'bad_timestamp', value: () => Buffer.from('{"ts":"yesterday noon","page":"/home"}') },
  { reject: 'bad_timestamp', value: () => Buffer.from('{"ts":"2026-02-30T10:00:00Z","page":"/home"}') },
  { reject: 'wrong_type', value: (n) => Buffer.from(`{"ts":${EVENTS_BASE_MS + n},"amount":"12.50"}`) },
  { reject: 'wrong_type', value: (n) => Buffer.from(`{"ts":${EVENTS_BASE_MS + n},"page":42}`) },
  { reject: 'not_an_object', value: () => Buffer.from('[1,2,3]') },
  { reject: 'empty', value: () => null },
];

/**
 * `count` records: mostly good events (ISO or epoch timestamps, nulls, absent fields, negative
 * latencies the page_traffic filter drops, late events an hour old), one in `badEvery` bad.
 * `startIndex` shifts event times, so later batches of a test land partly in new windows.
 */
export function generateRecords(count: number, options: { seed: number; badEvery?: number; startIndex?: number }): GeneratedRecord[] {
  const random = seededRandom(options.seed);
  return Array.from({ length: count }, (_, i) => generateRecord(random, (options.startIndex ?? 0) + i, options.badEvery));
}

/** Record number `n` of a stream drawn from `random`, for a test that interleaves its own draws. */
export function generateRecord(random: () => number, n: number, badEvery?: number): GeneratedRecord {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  if (badEvery && random() < 1 / badEvery) {
    const bad = pick(BAD_RECORDS);
    return { value: bad.value(n), reject: bad.reject };
  }
  const late = random() < 0.05;
  const event: GoodEvent = {
    tsMs: EVENTS_BASE_MS + n * 37 - (late ? 3_600_000 : 0) + Math.floor(random() * 1000),
    user_id: random() < 0.05 ? null : `u${Math.floor(random() * 500)}`,
    page: pick(PAGES),
    country: pick(COUNTRIES),
    latency_ms: random() < 0.05 ? null : Math.floor(random() * 2000) / 2 - (random() < 0.05 ? 100 : 0),
    amount: random() < 0.1 ? null : Math.floor(random() * 4000) / 4,
  };
  return { value: Buffer.from(encodeEvent(event, n, random)), event };
}

/**
 * JSON as varied producers write it: ISO or epoch times, null or absent fields, extra keys; `seq`
 * makes every good record's value unique, so a test can map what it reads back to its event.
 */
function encodeEvent(event: GoodEvent, seq: number, random: () => number): string {
  const object: Record<string, unknown> = {
    seq,
    ts: random() < 0.5 ? new Date(event.tsMs).toISOString() : event.tsMs,
    user_id: event.user_id,
    page: event.page,
    latency_ms: event.latency_ms,
    amount: event.amount,
    session: { id: Math.floor(random() * 1e6), tags: ['a', 'b'] },
  };
  if (event.country !== null || random() < 0.5) object.country = event.country;
  if (object.user_id === null && random() < 0.5) delete object.user_id;
  return JSON.stringify(object);
}

export type ViewRow = Record<string, string | number | null>;

/** page_traffic and revenue_by_country of foundation.yaml, by plain reduction; rows sorted. */
export function referenceViews(events: readonly GoodEvent[]): { page_traffic: ViewRow[]; revenue_by_country: ViewRow[] } {
  const traffic = new Map<string, { key: ViewRow; views: number; revenue: number | null; latencySum: number; latencyCount: number; max: number | null; users: Set<string> }>();
  const revenue = new Map<string, { key: ViewRow; revenue: number | null }>();
  const add = (a: number | null, b: number | null) => (b === null ? a : (a ?? 0) + b);
  for (const e of events) {
    const byCountry = revenue.get(String(e.country)) ?? { key: { country: e.country }, revenue: null };
    byCountry.revenue = add(byCountry.revenue, e.amount);
    revenue.set(String(e.country), byCountry);
    if (e.latency_ms === null || e.latency_ms < 0) continue;
    const key = { window_start: Math.floor(e.tsMs / 60_000) * 60_000, page: e.page, country: e.country };
    const id = JSON.stringify(key);
    const row = traffic.get(id) ?? { key, views: 0, revenue: null, latencySum: 0, latencyCount: 0, max: null, users: new Set<string>() };
    row.views++;
    row.revenue = add(row.revenue, e.amount);
    row.latencySum += e.latency_ms;
    row.latencyCount++;
    row.max = Math.max(row.max ?? e.latency_ms, e.latency_ms);
    if (e.user_id !== null) row.users.add(e.user_id);
    traffic.set(id, row);
  }
  return {
    page_traffic: sortRows(
      [...traffic.values()].map((r) => ({
        ...r.key,
        views: r.views,
        revenue: r.revenue,
        avg_latency: r.latencySum / r.latencyCount,
        max_latency: r.max,
        users: r.users.size,
      })),
    ),
    revenue_by_country: sortRows([...revenue.values()].map((r) => ({ ...r.key, revenue: r.revenue }))),
  };
}

export function sortRows(rows: ViewRow[]): ViewRow[] {
  const id = (row: ViewRow) => JSON.stringify(Object.values(row).slice(0, 3));
  return rows.sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
}
