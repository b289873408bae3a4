import { createHash } from 'node:crypto';
import type { AlertStatus } from './alert-state.ts';
import type { EventWindow } from './event-clock.ts';

/**
 * One recorded transition (or reminder) of one alert instance: a row of `alert_history`, and,
 * when `notify` is set, a notification in every sink of its alert.
 */
export interface AlertRecord {
  /** Position in this node's store; increasing, with gaps only across a failed append. */
  readonly seq: number;
  readonly id: string;
  readonly alert: string;
  /** The instance's dimensions as a JSON object, exactly as the evaluation query renders it. */
  readonly keyJson: string;
  readonly status: AlertStatus;
  readonly reminder: boolean;
  readonly notify: boolean;
  /** The view's finalized measures over the window, as a JSON object; null when there was no data. */
  readonly valueJson: string | null;
  /** The event-time window evaluated; null for a view of running totals. */
  readonly window: EventWindow | null;
  /** When the instance entered `status` (for a reminder: when it started firing). */
  readonly sinceMs: number;
  /** When the evaluation that recorded this ran (processing time). */
  readonly atMs: number;
  readonly severity: string;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Why an instance ended other than by its condition (`rule removed`, `rule changed: …`); absent
   * for what an evaluation recorded.
   */
  readonly reason?: string;
}

export type NewAlertRecord = Omit<AlertRecord, 'seq'>;

/**
 * A notification's id: the alert, the instance, and the transition (its state, whether a reminder,
 * and the evaluation time). Two nodes that evaluated the same data at the same moment give the
 * same transition the same id, so a receiver can drop what a takeover delivers twice.
 */
export function notificationId(alert: string, keyJson: string, status: AlertStatus, reminder: boolean, atMs: number): string {
  const keyHash = createHash('sha256').update(keyJson).digest('hex').slice(0, 16);
  return `${alert}:${keyHash}:${atMs}:${status}${reminder ? ':reminder' : ''}`;
}

/** What a webhook receives (and the Kafka and log sinks carry), as the issue specifies it. */
export interface NotificationPayload {
  readonly id: string;
  readonly alert: string;
  readonly state: AlertStatus;
  readonly reminder: boolean;
  readonly key: Record<string, unknown>;
  readonly value: Record<string, unknown> | null;
  readonly window: { readonly start: string | null; readonly end: string | null };
  readonly since: string;
  readonly at: string;
  readonly severity: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Only on a transition the rule's condition did not cause (see AlertRecord.reason). */
  readonly reason?: string;
}

/** JSON written by DuckDB's to_json may hold NaN or ±Infinity for a DOUBLE; JSON has no such numbers. */
export function parseJsonObject(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return JSON.parse(text.replace(/(?<=[:,[]\s*)-?(?:NaN|Infinity|inf|nan)(?=\s*[,}\]])/gi, 'null')) as Record<string, unknown>;
  }
}

export function toPayload(record: AlertRecord): NotificationPayload {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: record.id,
    alert: record.alert,
    state: record.status,
    reminder: record.reminder,
    key: parseJsonObject(record.keyJson) ?? {},
    value: parseJsonObject(record.valueJson),
    window: record.window
      ? { start: iso(record.window.startMs), end: iso(record.window.endExclusiveMs) }
      : { start: null, end: null },
    since: iso(record.sinceMs),
    at: iso(record.atMs),
    severity: record.severity,
    labels: record.labels,
    ...(record.reason !== undefined ? { reason: record.reason } : {}),
  };
}
