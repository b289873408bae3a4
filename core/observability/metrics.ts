import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per process, passed to each layer, which registers its own metrics
 * under the `lambda_` prefix. A registry per process (not the global one) keeps tests that run
 * several layers in one process from colliding.
 */
export function createMetricsRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'lambda_process_' });
  return registry;
}
