import { resolve } from 'node:path';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { LocalLog } from '../../core/source/local-log.ts';
import type { RecordSource } from '../../core/source/record-source.ts';
import type { StorageLayout } from '../../core/storage/storage-layout.ts';

/** The topic name the single-node local log stands for. */
export const LOCAL_TOPIC = 'events';

/** Kafka when `source.kafka` is configured; otherwise the durable local log under storage.dir. */
export async function openRecordSource(
  loaded: LoadedConfig,
  layout: StorageLayout,
  logger: Logger,
): Promise<{ source: RecordSource; localLog?: LocalLog; kafka?: KafkaRecordSource }> {
  const kafka = loaded.config.source.kafka;
  if (kafka) {
    const source = new KafkaRecordSource(
      { brokers: kafka.brokers, topic: kafka.topic, clientId: kafka.clientId, ssl: kafka.ssl, fetchThread: kafka.fetchThread, ...(kafka.sasl ? { sasl: kafka.sasl } : {}) },
      logger,
    );
    return { source, kafka: source };
  }
  const localLog = await LocalLog.open(resolve(layout.localLogDir()), { topic: LOCAL_TOPIC, logger });
  return { source: localLog, localLog };
}
