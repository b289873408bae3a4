import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { scenarioConfigYaml } from './fixtures/exactness-scenario.ts';
import { runLiveDefinitionsScenario } from './fixtures/live-definitions-scenario.ts';
import { receiverPerSuite } from '../support/webhook-receiver.ts';

describe('definitions followed without a restart, single node', () => {
  const suite = receiverPerSuite('lambda-live-hook-');
  let dir: string;
  let node: LambdaNode;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-live-definitions-'));
    node = await LambdaNode.start({ loaded: parseConfig(scenarioConfigYaml(dir)), roles: [...ALL_ROLES], logger: createLogger('test', { level: 'error' }) });
  });

  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('adds a view over existing history, changes a measure and removes a view, exactly, while the other views keep serving', async () => {
    await runLiveDefinitionsScenario({
      urls: [node.url!],
      adminUrl: node.url!,
      receiver: suite.receiver,
      async send(lines) {
        const response = await fetch(`${node.url!}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
        expect(response.status).toBe(200);
      },
    });
  }, 120_000);
});
