import { describe, expect, it } from 'vitest';
import { aggregateCallIn } from './aggregate-calls.ts';

describe('aggregateCallIn', () => {
  it.each([
    ['sum(views) > 3', 'sum'],
    ['views > 3 AND AVG (avg_latency) < 2', 'avg'],
    ['count(*) > 1', 'count'],
    ['approx_count_distinct(page) > 1', 'approx_count_distinct'],
    ['views > lag(views) OVER (ORDER BY page)', 'lag'],
    ['views > 1 AND row_number() OVER () = 1', 'row_number'],
    ['views > first_value(views) over (partition by page)', 'first_value'],
  ])('finds the aggregate in %s', (expression, name) => {
    expect(aggregateCallIn(expression)).toBe(name);
  });

  it.each([
    'views > 3',
    "page = 'sum(x)' AND country <> 'count('",
    '"sum" > 3',
    'greatest(views, 0) > 5 AND abs(avg_latency) > 1 AND coalesce(max_latency, 0) > 2',
    'list_contains(list_value(1, 2), views)',
    'summary > 1 AND counted > 2',
    'x.sum(1)',
  ])('accepts %s', (expression) => {
    expect(aggregateCallIn(expression)).toBeUndefined();
  });
});
