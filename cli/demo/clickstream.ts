import { seededRandom as random } from '../../core/random/seeded-random.ts';
/**
 * The demo's clickstream: page views with latency and revenue, from a seeded generator so runs
 * are repeatable. Every `spikeEveryMs` the /checkout latency jumps to ~900 ms for `spikeForMs`,
 * which is what the demo's slow_checkout alert watches. A few events arrive late (event time in
 * the past) and a few are malformed, so the console shows late updates and rejected records.
 */
export interface ClickstreamOptions {
  readonly seed?: number;
  readonly spikeEveryMs?: number;
  readonly spikeForMs?: number;
  /** Fraction of events sent with an event time 1–3 minutes in the past. */
  readonly lateFraction?: number;
  /** Fraction of malformed records (wrong types, bad timestamps, broken JSON). */
  readonly badFraction?: number;
}

const PAGES = ['/', '/search', '/product', '/product', '/product', '/cart', '/checkout'];
const COUNTRIES = ['US', 'US', 'DE', 'FR', 'JP', 'BR', 'IN', 'GB'];
const BASE_LATENCY_MS: Record<string, number> = { '/': 40, '/search': 120, '/product': 80, '/cart': 60, '/checkout': 180 };


export function createClickstream(options: ClickstreamOptions = {}) {
  const next = random(options.seed ?? 42);
  const spikeEveryMs = options.spikeEveryMs ?? 4 * 60_000;
  const spikeForMs = options.spikeForMs ?? 75_000;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const inSpike = (nowMs: number) => nowMs % spikeEveryMs >= spikeEveryMs - spikeForMs;

  /** One event as the JSON line a producer would send. */
  return function event(nowMs: number): string {
    const roll = next();
    if (roll < (options.badFraction ?? 0.002)) {
      return pick([`{"ts": "${new Date(nowMs).toISOString()}", "page": "/", "latency_ms": "fast"}`, '{"page": "/", "latency_ms": 12}', '{"ts": "yesterday"}', '{"ts": 1']);
    }
    const page = pick(PAGES);
    const late = next() < (options.lateFraction ?? 0.01);
    const ts = late ? nowMs - 60_000 - Math.floor(next() * 120_000) : nowMs;
    const spike = page === '/checkout' && inSpike(nowMs);
    // Log-normal-ish latency around the page's base, or ~900 ms during a checkout spike.
    const latency = (spike ? 900 : BASE_LATENCY_MS[page]!) * Math.exp((next() - 0.5) * 0.6);
    const amount = page === '/checkout' ? Math.round((5 + next() * 195) * 100) / 100 : null;
    return JSON.stringify({
      ts: new Date(ts).toISOString(),
      user_id: `u${Math.floor(next() * 5_000)}`,
      page,
      country: pick(COUNTRIES),
      latency_ms: Math.round(latency * 10) / 10,
      ...(amount === null ? {} : { amount }),
    });
  };
}
