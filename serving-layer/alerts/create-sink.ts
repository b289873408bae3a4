import type { Kafka } from 'kafkajs';
import type { SinkConfig } from '../../core/config/config-schema.ts';
import { ConfigError } from '../../core/errors/index.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { sinkId, type AlertSink } from './alert-sink.ts';
import { KafkaSink } from './kafka-sink.ts';
import { LogSink } from './log-sink.ts';
import { WebhookSink } from './webhook-sink.ts';

export interface SinkDependencies {
  /** Needed by Kafka sinks only. */
  readonly kafka?: Kafka;
  readonly logger: Logger;
}

/** The sink a `notify` entry describes; `path` locates the entry for the error message. */
export function createSink(config: SinkConfig, deps: SinkDependencies, path: string): AlertSink {
  const id = sinkId(config);
  if ('webhook' in config) return new WebhookSink({ id, url: config.webhook, timeoutMs: config.timeout, ...(config.headers ? { headers: config.headers } : {}) });
  if ('kafka' in config) {
    if (!deps.kafka) throw new ConfigError([{ path, message: 'a Kafka sink needs source.kafka (the brokers to produce to)' }]);
    return new KafkaSink(id, deps.kafka, config.kafka.topic);
  }
  return new LogSink(id, deps.logger);
}
