import { describe, expect, it } from 'vitest';
import { CoordinationError } from '../../core/errors/index.ts';
import { startupCall } from './coordination.ts';

const zkError = (code: string, retriable = false) => new CoordinationError(`ZooKeeper create /lambda failed (${code})`, { retriable, context: { op: 'create', path: '/lambda', code } });

describe('startupCall', () => {
  it('retries a call whose session expired or closed under it (the session opens a new one), and a retriable one', async () => {
    for (const first of [zkError('SESSIONEXPIRED'), zkError('CLOSING'), zkError('CONNECTIONLOSS', true)]) {
      let calls = 0;
      const result = await startupCall(async () => {
        calls++;
        if (calls === 1) throw first;
        return 'registered';
      });
      expect([result, calls]).toEqual(['registered', 2]);
    }
  });

  it('gives up at once on a lasting error', async () => {
    let calls = 0;
    const duplicate = zkError('NODEEXISTS');
    await expect(
      startupCall(async () => {
        calls++;
        throw duplicate;
      }),
    ).rejects.toBe(duplicate);
    expect(calls).toBe(1);
  });
});
