import { describe, expect, it } from 'vitest';
import { startServingFixture } from '../../test/support/serving-fixture.ts';

describe('GET /v1/views?waitFor= (a blocking read)', () => {
  it('answers settled: false at once when the server closes, rather than holding the shutdown up', async () => {
    let aborted: AbortSignal | undefined;
    const node = await startServingFixture({
      // A version that never serves: only the timeout or an abort ends the wait.
      server: {
        viewsSettled: (_version, _timeoutMs, signal) =>
          new Promise<boolean>((resolve) => {
            aborted = signal;
            signal.addEventListener('abort', () => resolve(false), { once: true });
          }),
      },
    });
    const answer = fetch(`${node.url}/v1/views?waitFor=7&timeout=5m`).then(async (r) => ({ status: r.status, body: (await r.json()) as { settled: boolean; views: unknown[] } }));
    for (let i = 0; i < 100 && !aborted; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(aborted?.aborted).toBe(false);
    const closingAt = performance.now();
    await node.close();
    // Well within the 5 minutes asked for (the fixture's own teardown included).
    expect(performance.now() - closingAt).toBeLessThan(10_000);
    const { status, body } = await answer;
    expect(status).toBe(200);
    expect(body.settled).toBe(false);
    expect(body.views.length).toBeGreaterThan(0);
  });
});
