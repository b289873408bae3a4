import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The alerting metrics, registered once per registry under the `lambda_alert` prefix. */
export class AlertMetrics {
  readonly evaluationSeconds: Histogram;
  readonly transitions: Counter<'alert' | 'state'>;
  readonly instances: Gauge<'alert' | 'state'>;
  readonly delivered: Counter<'sink'>;
  readonly deliveryFailures: Counter<'sink'>;
  readonly dropped: Counter<'sink'>;
  readonly pending: Gauge<'sink'>;
  readonly notifier: Gauge;

  constructor(registry: Registry) {
    const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
    const registers = [registry];
    this.evaluationSeconds =
      existing('lambda_alert_evaluation_seconds') ??
      new Histogram({
        name: 'lambda_alert_evaluation_seconds',
        help: 'Time to evaluate every alert rule after a micro-batch',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
        registers,
      });
    this.transitions =
      existing('lambda_alert_transitions_total') ??
      new Counter({ name: 'lambda_alert_transitions_total', help: 'Alert instance transitions recorded', labelNames: ['alert', 'state'], registers });
    this.instances =
      existing('lambda_alert_instances') ??
      new Gauge({ name: 'lambda_alert_instances', help: 'Alert instances by state (inactive ones are not counted)', labelNames: ['alert', 'state'], registers });
    this.delivered =
      existing('lambda_alert_notifications_delivered_total') ??
      new Counter({ name: 'lambda_alert_notifications_delivered_total', help: 'Notifications a sink acknowledged', labelNames: ['sink'], registers });
    this.deliveryFailures =
      existing('lambda_alert_delivery_failures_total') ??
      new Counter({ name: 'lambda_alert_delivery_failures_total', help: 'Failed delivery attempts (each is retried)', labelNames: ['sink'], registers });
    this.dropped =
      existing('lambda_alert_notifications_dropped_total') ??
      new Counter({ name: 'lambda_alert_notifications_dropped_total', help: 'Notifications a sink kept refusing (e.g. HTTP 4xx), parked after their attempts', labelNames: ['sink'], registers });
    this.pending =
      existing('lambda_alert_outbox_pending') ??
      new Gauge({ name: 'lambda_alert_outbox_pending', help: 'Notifications waiting for delivery, per sink', labelNames: ['sink'], registers });
    this.notifier =
      existing('lambda_alert_notifier') ?? new Gauge({ name: 'lambda_alert_notifier', help: '1 while this process delivers alert notifications', registers });
  }
}
