import { loadConfigFile } from '../../core/config/load-config.ts';

/**
 * The node a client command talks to: `--url` or `LAMBDA_URL` when given; else the port a
 * `lambda start` in this environment listens on: `PORT`, else `serving.port` of `--config` (or
 * `LAMBDA_CONFIG`), else 8080, on `serving.host` (a wildcard bind is reached on loopback).
 */
export async function nodeUrl(options: { url?: string; config?: string }): Promise<string> {
  if (options.url) return options.url;
  const file = options.config ?? process.env.LAMBDA_CONFIG;
  const serving = file ? (await loadConfigFile(file)).config.serving : undefined;
  const port = process.env.PORT || String(serving?.port ?? 8080);
  const host = serving?.host === undefined || serving.host === '0.0.0.0' ? '127.0.0.1' : serving.host === '::' ? '[::1]' : serving.host.includes(':') ? `[${serving.host}]` : serving.host;
  return `http://${host}:${port}`;
}
