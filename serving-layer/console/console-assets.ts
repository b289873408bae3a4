import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What the HTTP layer serves for the web console: the static files of `rootDir` at `/`
 * (index.html, console.css and the ES modules next to it), and each `vendor` entry at
 * `/vendor/<key>` from node_modules. The console is plain files: nothing is built or bundled.
 */
export interface ConsoleAssets {
  readonly rootDir: string;
  /** URL path under `/vendor/` → absolute file path in node_modules. */
  readonly vendor: Readonly<Record<string, string>>;
}

const require = createRequire(import.meta.url);

export const consoleAssets: ConsoleAssets = {
  rootDir: dirname(fileURLToPath(import.meta.url)),
  vendor: {
    'uPlot.esm.js': require.resolve('uplot/dist/uPlot.esm.js'),
    'uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
  },
};
