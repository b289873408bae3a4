import { LambdaError } from '../../core/errors/index.ts';

/**
 * A notification sink refused or failed a delivery. Retriable failures (unreachable, timeout,
 * 5xx, 408, 429, a Kafka broker error) are retried with backoff until delivered. A refusal
 * (`retriable: false`, e.g. another 4xx) is often a receiver being misconfigured or redeployed, so
 * it is retried a few times too; if the receiver keeps refusing, the notification is parked
 * (error log with the answer, a metric, listed by `GET /v1/alerts`; still in `alert_history`)
 * so that one notification the receiver will never take cannot block its sink forever.
 */
export class SinkError extends LambdaError {}
