import type { Logger } from '../../core/observability/logger.ts';
import type { NotificationPayload } from './alert-record.ts';
import type { AlertSink } from './alert-sink.ts';

/** Writes each notification to the process log: firing and reminders at warn, resolved at info. */
export class LogSink implements AlertSink {
  readonly description = 'log';

  constructor(
    readonly id: string,
    private readonly logger: Logger,
  ) {}

  async deliver(payload: NotificationPayload): Promise<void> {
    const what = payload.reminder ? 'still firing' : payload.state;
    const level = payload.state === 'firing' ? 'warn' : 'info';
    this.logger[level]({ notification: payload }, `alert ${payload.alert} ${what} for ${JSON.stringify(payload.key)}`);
  }

  async close(): Promise<void> {}
}
