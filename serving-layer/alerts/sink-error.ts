import { LambdaError } from '../../core/errors/index.ts';

/**
 * A notification sink refused or failed a delivery. Retriable failures (unreachable, timeout,
 * 5xx, 429, a Kafka broker error) are retried with backoff until delivered; a non-retriable one
 * (a 4xx: the receiver will never take this payload) drops the notification with an error log,
 * as Alertmanager does, so one bad notification cannot block its sink forever.
 */
export class SinkError extends LambdaError {}
