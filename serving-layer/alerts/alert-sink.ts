import { createHash } from 'node:crypto';
import type { SinkConfig } from '../../core/config/config-schema.ts';
import type { NotificationPayload } from './alert-record.ts';

/** Where notifications go. `deliver` resolves once the receiver has the notification. */
export interface AlertSink {
  /** Stable across restarts and nodes: names the sink's delivery position. */
  readonly id: string;
  /** For logs and the API, without secrets. */
  readonly description: string;
  /** Throws SinkError (or any error, taken as retriable); aborting `signal` abandons the attempt. */
  deliver(payload: NotificationPayload, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** `webhook-1a2b…`, `kafka-1a2b…`, `log-1a2b…`: the kind, and a hash of the sink's whole config. */
export function sinkId(config: SinkConfig): string {
  const kind = 'webhook' in config ? 'webhook' : 'kafka' in config ? 'kafka' : 'log';
  return `${kind}-${createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12)}`;
}
