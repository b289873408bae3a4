import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServingFixture, type ServingFixture } from '../../test/support/serving-fixture.ts';

let node: ServingFixture;
beforeAll(async () => {
  node = await startServingFixture({});
});
afterAll(async () => node?.close());

describe('a body over the limit', () => {
  it('is answered 413 naming the route and its limit, 1 MiB for a query', async () => {
    const response = await fetch(`${node.url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: `SELECT '${'x'.repeat(1024 * 1024)}'` }) });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: 'the body is larger than the 1 MiB limit of POST /v1/query' });
    const fits = await fetch(`${node.url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: `SELECT '${'x'.repeat(1000 * 1000)}' IS NOT NULL AS ok` }) });
    expect(fits.status).toBe(200);
  });
});
