import type { Kafka } from 'kafkajs';
import type { Config } from '../../core/config/config-schema.ts';
import { ConfigError } from '../../core/errors/index.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { sinkId, type AlertSink } from './alert-sink.ts';
import { createSink } from './create-sink.ts';
import type { PlannedRoute } from './notification-outbox.ts';

export interface SinkRouteDependencies {
  readonly logger: Logger;
  readonly kafka?: Kafka;
  /** Sinks to use instead of those the config describes, by sink id (tests, benches). */
  readonly sinkOverrides?: ReadonlyMap<string, AlertSink>;
}

/**
 * One route per distinct `notify` entry, shared by the alerts that list it; its sink is made only
 * when the outbox has none of that id yet. What cannot make a sink (a Kafka sink without brokers)
 * is refused here, before anything changed.
 */
export function plannedRoutes(alerts: Config['alerts'], deps: SinkRouteDependencies): PlannedRoute[] {
  const routes = new Map<string, { alerts: string[]; createSink: () => AlertSink }>();
  for (const [name, alert] of Object.entries(alerts)) {
    alert.notify.forEach((config, i) => {
      if ('log' in config && !config.log) return;
      const id = sinkId(config);
      const path = `alerts.${name}.notify.${i}`;
      if ('kafka' in config && !deps.kafka && !deps.sinkOverrides?.has(id)) {
        throw new ConfigError([{ path, message: 'a Kafka sink needs source.kafka (the brokers to produce to)' }]);
      }
      const route = routes.get(id);
      if (route) {
        if (!route.alerts.includes(name)) route.alerts.push(name);
        return;
      }
      const make = () => deps.sinkOverrides?.get(id) ?? createSink(config, { logger: deps.logger, ...(deps.kafka ? { kafka: deps.kafka } : {}) }, path);
      routes.set(id, { alerts: [name], createSink: make });
    });
  }
  return [...routes].map(([id, route]) => ({ sinkId: id, alerts: route.alerts, createSink: route.createSink }));
}
