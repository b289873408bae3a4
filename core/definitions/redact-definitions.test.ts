import { describe, expect, it } from 'vitest';
import { redactDefinitions, redactedSecrets } from './redact-definitions.ts';

const definitions = {
  views: { v: { measures: { n: 'count(*)' } } },
  alerts: {
    hooked: { view: 'v', condition: 'n > 1', notify: [{ webhook: 'https://user:pw@hooks.example/p/q?token=t', headers: { 'x-key': 'k' } }, { log: true }] },
    plain: { view: 'v', condition: 'n > 2', notify: [{ webhook: 'https://hooks.example/p' }] },
  },
};

describe('redactDefinitions', () => {
  it('hides header values and the query string and password of webhook URLs, and nothing else', () => {
    const redacted = redactDefinitions(definitions);
    expect(redacted.views).toEqual(definitions.views);
    expect(redacted.alerts['hooked']).toEqual({
      view: 'v',
      condition: 'n > 1',
      notify: [{ webhook: 'https://user:<redacted>@hooks.example/p/q?<redacted>', headers: { 'x-key': '<redacted>' } }, { log: true }],
    });
    expect(redacted.alerts['plain']).toEqual(definitions.alerts.plain);
  });

  it('finds every redacted secret in a set to apply, by key path', () => {
    expect(redactedSecrets(definitions)).toEqual([]);
    expect(redactedSecrets(redactDefinitions(definitions)).map((i) => i.path)).toEqual(['alerts.hooked.notify.0.webhook', 'alerts.hooked.notify.0.headers.x-key']);
  });
});
