import { type Command } from 'commander';
import { positiveInteger, positiveNumber } from './option-parsers.ts';
import { nodeUrl } from './node-url.ts';
import { loadConfigFile } from '../../core/config/load-config.ts';
import { LambdaError } from '../../core/errors/index.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { createClickstream } from '../demo/clickstream.ts';

const TICK_MS = 250;

/**
 * `lambda demo`: sends the demo clickstream to a cluster's Kafka topic (`--config` with
 * source.kafka) or to a running single-node process (`POST /v1/events` at `--url`), until stopped
 * or until `--count` events are sent.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('send demo clickstream events to a node (POST /v1/events) or to the Kafka topic of --config')
    .option('-c, --config <file>', 'a config with source.kafka: produce to its topic')
    .option('--url <url>', 'a single-node process to POST to (default: $LAMBDA_URL, else 127.0.0.1:$PORT, else :8080)', process.env.LAMBDA_URL)
    .option('--rate <eventsPerSecond>', 'events per second', positiveNumber, 200)
    .option('--count <events>', 'stop after this many events', positiveInteger)
    .action(async (options: { config?: string; url?: string; rate: number; count?: number }) => {
      const send = options.config ? await kafkaSender(options.config) : httpSender(await nodeUrl({ url: options.url, config: undefined }));
      const event = createClickstream({ seed: Date.now() });
      let sent = 0;
      let stopped = false;
      process.once('SIGINT', () => (stopped = true));
      while (!stopped && (options.count === undefined || sent < options.count)) {
        const started = Date.now();
        const n = Math.max(1, Math.round((options.rate * TICK_MS) / 1000));
        const count = options.count === undefined ? n : Math.min(n, options.count - sent);
        await send.send(Array.from({ length: count }, () => event(Date.now())));
        sent += count;
        await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - started))));
      }
      await send.close();
      process.stdout.write(`sent ${sent} demo events; ${send.refused()} refused by the node as malformed\n`);
    });
}

interface Sender {
  send(lines: string[]): Promise<void>;
  /** Lines the node answered as malformed (the demo sends a few on purpose). */
  refused(): number;
  close(): Promise<void>;
}

function httpSender(url: string): Sender {
  let refused = 0;
  return {
    refused: () => refused,
    async send(lines) {
      const response = await fetch(`${url.replace(/\/$/, '')}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', ...(process.env.LAMBDA_TOKEN ? { authorization: `Bearer ${process.env.LAMBDA_TOKEN}` } : {}) },
        body: lines.join('\n'),
      });
      const body = (await response.json().catch(() => ({}))) as { rejected?: number; error?: string };
      if (response.status >= 500 || response.status === 404 || response.status === 401) {
        throw new LambdaError(`${url} answered ${response.status}: ${body.error ?? ''}`);
      }
      refused += body.rejected ?? 0;
    },
    close: async () => undefined,
  };
}

async function kafkaSender(file: string): Promise<Sender> {
  const { config } = await loadConfigFile(file);
  if (!config.source.kafka) throw new LambdaError(`${file} has no source.kafka; to feed a single-node process use --url`);
  const source = new KafkaRecordSource({ ...config.source.kafka }, createLogger('lambda', { level: 'warn' }));
  const producer = source.client.producer();
  await producer.connect();
  return {
    refused: () => 0,
    async send(lines) {
      await producer.send({ topic: config.source.kafka!.topic, messages: lines.map((value) => ({ value })) });
    },
    close: () => producer.disconnect(),
  };
}
