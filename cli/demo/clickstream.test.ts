import { describe, expect, it } from 'vitest';
import { createEventDecoder } from '../../core/events/decode-event.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { readFileSync } from 'node:fs';
import { createClickstream } from './clickstream.ts';

const loaded = parseConfig(readFileSync(new URL('./demo-config.yaml', import.meta.url), 'utf8'));
const decode = createEventDecoder(loaded.schema);

describe('demo clickstream', () => {
  it('emits mostly valid events, a few rejected ones, and /checkout spikes inside the spike window only', () => {
    const event = createClickstream({ seed: 7, spikeEveryMs: 60_000, spikeForMs: 20_000, badFraction: 0.01 });
    const start = Date.UTC(2026, 10, 21, 9, 0, 0);
    const checkout = { spike: [] as number[], calm: [] as number[] };
    let bad = 0;
    for (let i = 0; i < 20_000; i++) {
      const now = start + i * 3;
      const result = decode(event(now));
      if (!result.ok) {
        bad++;
        continue;
      }
      const [, , page, , latency] = result.event.values as [number, string, string, string, number];
      if (page === '/checkout') (now % 60_000 >= 40_000 ? checkout.spike : checkout.calm).push(latency);
    }
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(bad).toBeGreaterThan(50);
    expect(bad).toBeLessThan(400);
    expect(avg(checkout.spike)).toBeGreaterThan(700);
    expect(avg(checkout.calm)).toBeLessThan(300);
  });
});
