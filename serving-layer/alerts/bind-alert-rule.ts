import type { DuckDBConnection } from '@duckdb/node-api';
import { describeQuery } from '../../core/duckdb/column-types.ts';
import { duckDbMessage } from '../../core/duckdb/duckdb-message.ts';
import { ConfigError } from '../../core/errors/index.ts';
import { allStatesSql, dimensionsSql, judgeSql, valuesSql, windowStatesSql } from './alert-query.ts';
import type { AlertRule } from './alert-rule.ts';
import { slidingWindow } from './event-clock.ts';

/**
 * Binds the rule's queries once and returns the types of the view's dimensions. What config
 * loading lets through but evaluation cannot run (an aggregate such as `sum(views) > 5` in a
 * condition: the measures are already aggregated) stops the start with the alert's key path
 * instead of failing every micro-batch.
 */
export async function bindAlertRule(connection: DuckDBConnection, rule: AlertRule): Promise<string[]> {
  const states = rule.bucketMs === null ? allStatesSql(rule.view) : windowStatesSql(rule.view, slidingWindow(0, rule.windowMs!, rule.bucketMs));
  try {
    const dimTypes = rule.view.definition.dimensions.length === 0 ? [] : (await describeQuery(connection, dimensionsSql(rule.view, states))).map((c) => c.type);
    await describeQuery(connection, judgeSql(rule, states, '(SELECT NULL::VARCHAR AS key)'));
    await describeQuery(connection, valuesSql(rule, states, '(SELECT NULL::VARCHAR AS key)', dimTypes));
    return dimTypes;
  } catch (error) {
    throw new ConfigError([{ path: `alerts.${rule.name}`, message: `cannot evaluate where/condition/clear over the view: ${duckDbMessage(error)}` }]);
  }
}
