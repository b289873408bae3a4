import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { runExactnessScenario, scenarioConfigYaml } from './fixtures/exactness-scenario.ts';

describe('single-node mode, end to end', () => {
  let dir: string;
  let node: LambdaNode;

  const start = () => LambdaNode.start({ loaded: parseConfig(scenarioConfigYaml(dir, '', { allEventsView: true })), roles: [...ALL_ROLES], logger: createLogger('test', { level: 'error' }) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-single-'));
    node = await start();
  });

  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers every view, events and rejected exactly while batches are recomputed and swapped in, and across a restart', async () => {
    await runExactnessScenario(
      {
        url: node.url!,
        partitions: 1,
        refusesMalformed: true,
        async restart() {
          await node.stop();
          node = await start();
          return node.url!;
        },
        async send(lines) {
          const response = await fetch(`${node.url!}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
          const result = (await response.json()) as { accepted: number; rejected: number; errors: { line: number }[] };
          expect(response.status).toBe(200);
          // Malformed lines are answered per line; the good lines around them are kept.
          expect(result.rejected).toBe(3);
          expect(result.accepted).toBe(lines.length - 3);
          expect(result.errors.map((e) => e.line)).toEqual([101, 102, 103]);
        },
      },
      { restartAfterRound: 3 },
    );
  }, 120_000);
});
