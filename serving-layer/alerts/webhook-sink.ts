import type { NotificationPayload } from './alert-record.ts';
import type { AlertSink } from './alert-sink.ts';
import { SinkError } from './sink-error.ts';

export interface WebhookSinkOptions {
  readonly id: string;
  readonly url: string;
  readonly timeoutMs: number;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * POSTs each notification as JSON. 2xx is delivered; a timeout, a refused connection, 5xx, 408 and
 * 429 are retriable; any other status is a refusal (not retriable: the lane retries it a few times,
 * then parks it). Errors carry the status and an excerpt of the answer's body, which usually says
 * what the receiver wants changed. The notification id also goes in `Idempotency-Key`, so
 * receivers can drop redeliveries.
 */
export class WebhookSink implements AlertSink {
  readonly id: string;
  readonly description: string;

  constructor(private readonly options: WebhookSinkOptions) {
    this.id = options.id;
    const url = new URL(options.url);
    this.description = `webhook ${url.origin}${url.pathname}`;
  }

  async deliver(payload: NotificationPayload, signal: AbortSignal): Promise<void> {
    const context = { sink: this.description, id: payload.id };
    // Not AbortSignal.any([signal, AbortSignal.timeout()]): on Node 20 the composite holds its
    // sources weakly, and a collected timeout signal never fires.
    const attempt = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort();
    }, this.options.timeoutMs);
    const cancel = () => attempt.abort(signal.reason);
    signal.addEventListener('abort', cancel, { once: true });
    let response: Response;
    let body: string;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': payload.id, ...this.options.headers },
        body: JSON.stringify(payload),
        signal: attempt.signal,
      });
      body = await response.text();
    } catch (error) {
      const reason = timedOut ? `no answer within ${this.options.timeoutMs} ms` : `unreachable (${causeMessage(error)})`;
      throw new SinkError(`${this.description}: ${reason}`, { retriable: true, context, cause: error });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', cancel);
    }
    if (response.ok) return;
    const retriable = response.status >= 500 || response.status === 408 || response.status === 429;
    const excerpt = body.replace(/\s+/g, ' ').trim().slice(0, BODY_EXCERPT_CHARS);
    throw new SinkError(`${this.description} answered HTTP ${response.status}${excerpt ? `: ${excerpt}` : ''}`, {
      retriable,
      context: { ...context, status: response.status },
    });
  }

  async close(): Promise<void> {}
}

const BODY_EXCERPT_CHARS = 300;

function causeMessage(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : String(cause);
}
