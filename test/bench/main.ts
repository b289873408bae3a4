import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * `npm run bench -- <name>` runs `test/bench/<name>-bench.ts`; each bench prints JSON lines
 * {"bench", "value", "unit", "baseline", "baselineValue", "ratio"} on stdout.
 */
const name = process.argv[2];
const available = readdirSync(fileURLToPath(new URL('.', import.meta.url)))
  .filter((f) => f.endsWith('-bench.ts'))
  .map((f) => f.slice(0, -'-bench.ts'.length));
if (!name || !/^[a-z0-9-]+$/.test(name) || !existsSync(fileURLToPath(new URL(`./${name}-bench.ts`, import.meta.url)))) {
  process.stderr.write(`usage: npm run bench -- <name>; benches: ${available.join(', ') || '(none)'}\n`);
  process.exit(2);
}
await import(`./${name}-bench.ts`);
