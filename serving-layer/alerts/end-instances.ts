import type { AlertInstance } from './alert-evaluator.ts';
import { notificationId, type NewAlertRecord } from './alert-record.ts';
import type { AlertRule } from './alert-rule.ts';

/**
 * The records that end a rule's instances when no evaluation can (the rule was removed, or changed
 * so that its keys name other things), pure. What an on-call engineer expects: a firing instance
 * was paged, so it resolves with a notification (to the sinks that were paged: see
 * NotificationOutbox.setRoutes), carrying `reason` and no value (nothing was evaluated); a pending
 * one was never notified and quietly becomes inactive; a resolved one has already ended.
 */
export function endInstances(rule: AlertRule, instances: Iterable<AlertInstance>, reason: string, nowMs: number): NewAlertRecord[] {
  const records: NewAlertRecord[] = [];
  for (const instance of instances) {
    const { status } = instance.state;
    if (status !== 'firing' && status !== 'pending') continue;
    const next = status === 'firing' ? 'resolved' : 'inactive';
    records.push({
      id: notificationId(rule.name, instance.keyJson, next, false, nowMs),
      alert: rule.name,
      keyJson: instance.keyJson,
      status: next,
      reminder: false,
      notify: next === 'resolved',
      valueJson: null,
      window: null,
      sinceMs: nowMs,
      atMs: nowMs,
      severity: rule.severity,
      labels: rule.labels,
      reason,
    });
  }
  // Key order makes the record order the same on every node (as for evaluations).
  return records.sort((a, b) => (a.keyJson < b.keyJson ? -1 : a.keyJson > b.keyJson ? 1 : 0));
}
