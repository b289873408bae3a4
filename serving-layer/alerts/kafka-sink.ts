import type { Kafka, Producer } from 'kafkajs';
import type { NotificationPayload } from './alert-record.ts';
import type { AlertSink } from './alert-sink.ts';
import { SinkError } from './sink-error.ts';

/**
 * Produces each notification to a Kafka topic (acks=all), keyed by alert and instance so that one
 * instance's notifications stay in order on one partition; the id rides in a `notification-id`
 * header. Every failure is retried by the outbox, except a broker's definitive refusal (e.g. not
 * authorized, message too large).
 */
export class KafkaSink implements AlertSink {
  readonly description: string;
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;

  constructor(
    readonly id: string,
    private readonly kafka: Kafka,
    private readonly topic: string,
  ) {
    this.description = `kafka topic ${topic}`;
  }

  async deliver(payload: NotificationPayload, signal: AbortSignal): Promise<void> {
    const context = { sink: this.description, id: payload.id };
    try {
      const producer = await abortable(this.connect(), signal);
      const message = { key: `${payload.alert}:${JSON.stringify(payload.key)}`, value: JSON.stringify(payload), headers: { 'notification-id': payload.id } };
      await abortable(producer.send({ topic: this.topic, acks: -1, messages: [message] }), signal);
    } catch (error) {
      throw new SinkError(`${this.description}: ${(error as Error).message}`, { retriable: isRetriable(error), context, cause: error });
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.connecting = undefined;
    await producer?.disconnect();
  }

  private connect(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 } });
      try {
        await producer.connect();
      } catch (error) {
        this.connecting = undefined;
        throw error;
      }
      this.producer = producer;
      return producer;
    })();
    return this.connecting;
  }
}

/** kafkajs wraps the last error in KafkaJSNumberOfRetriesExceeded (non-retriable); look through it. */
function isRetriable(error: unknown): boolean {
  let root = error as { name?: string; retriable?: boolean; cause?: unknown } | undefined;
  while (root?.name === 'KafkaJSNumberOfRetriesExceeded' && root.cause) root = root.cause as typeof root;
  return !(root?.name === 'KafkaJSProtocolError' && root.retriable === false);
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
