import { describe, expect, it } from 'vitest';
import { parseMeasure, splitCall } from './measure.ts';

describe('splitCall', () => {
  it.each([
    ['sum(amount)', { fn: 'sum', argument: 'amount' }],
    ['SUM( amount * 2 )', { fn: 'sum', argument: 'amount * 2' }],
    ["max(coalesce(x, 0) + length(')'))", { fn: 'max', argument: "coalesce(x, 0) + length(')')" }],
    ['count(*)', { fn: 'count', argument: '*' }],
  ])('splits %s', (expression, expected) => {
    expect(splitCall(expression)).toEqual(expected);
  });

  it.each(['sum(a) / sum(b)', 'amount', 'sum(a) FILTER (WHERE b)', 'sum(a', '(sum(a))'])('refuses %s', (expression) => {
    expect(splitCall(expression)).toBeUndefined();
  });
});

describe('parseMeasure', () => {
  it('accepts every mergeable aggregate over any expression', () => {
    for (const fn of ['count', 'sum', 'min', 'max', 'avg', 'approx_count_distinct']) {
      expect(parseMeasure('m', `${fn}(a + b)`)).toEqual({ ok: true, measure: { name: 'm', kind: fn, argumentSql: 'a + b', expression: `${fn}(a + b)` } });
    }
  });

  it.each([
    ['median(x)', /median\(\) cannot be merged exactly/],
    ['stddev(x)', /avg\(x \* x\)/],
    ['count(DISTINCT u)', /use approx_count_distinct\(u\)/],
    ['sum(*)', /not meaningful/],
    ['sum()', /needs an argument/],
    ['foo(x)', /not a supported aggregate/],
  ])('rejects %s saying what to do instead', (expression, message) => {
    const result = parseMeasure('m', expression);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(message);
  });
});
