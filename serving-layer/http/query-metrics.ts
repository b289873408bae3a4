import { Counter, Histogram, type Registry } from 'prom-client';

export interface QueryMetrics {
  /** lambda_query_total{format}: queries received (after the body was valid). */
  readonly queries: Counter<'format'>;
  /** lambda_query_errors_total{kind}: bad_request, refused, timeout, internal. */
  readonly errors: Counter<'kind'>;
  /** lambda_query_duration_seconds{outcome}: ok or the error kind. */
  readonly durationSeconds: Histogram<'outcome'>;
  readonly rowsReturned: Counter;
  readonly truncated: Counter;
  /** lambda_http_requests_total{method, route, status}: every request, routes by pattern. */
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
}

/** The serving layer's metrics in `registry`, created once (servers restarted in one process share them). */
export function queryMetrics(registry: Registry): QueryMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
  const durationName = 'lambda_query_duration_seconds';
  return {
    queries: counter('lambda_query_total', 'SQL queries received over HTTP, by result format', ['format']),
    errors: counter('lambda_query_errors_total', 'SQL queries that failed, by kind: bad_request, refused, timeout, internal', ['kind']),
    durationSeconds:
      (registry.getSingleMetric(durationName) as Histogram<'outcome'> | undefined) ??
      new Histogram({
        name: durationName,
        help: 'SQL query latency from request to result, by outcome (ok or the error kind)',
        labelNames: ['outcome'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry],
      }),
    rowsReturned: counter('lambda_query_rows_returned_total', 'Rows returned by SQL queries'),
    truncated: counter('lambda_query_truncated_total', 'SQL queries whose result was cut at serving.maxRows'),
    httpRequests: counter('lambda_http_requests_total', 'HTTP requests by method, route pattern and status code', ['method', 'route', 'status']),
  };
}
