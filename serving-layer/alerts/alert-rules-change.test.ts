import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { resolveServedRules } from './alert-rule.ts';
import { keysKeepMeaning, planRulesChange, type RuleSet } from './alert-rules-change.ts';

const SOURCE = `source: {timestamp: ts, schema: {ts: TIMESTAMP, host: VARCHAR, region: VARCHAR, errors: INTEGER}}`;

function rules(views: string, alerts: string, served?: readonly string[]): RuleSet {
  const loaded = parseConfig(`${SOURCE}\nviews:\n${views}\nalerts:\n${alerts}`);
  const { rules: running, waiting } = resolveServedRules({ config: loaded.config, views: loaded.views.filter((v) => !served || served.includes(v.definition.name)) });
  return { running, waiting };
}

const VIEWS = `  a: {window: 10s, dimensions: [host], measures: {errors: sum(errors)}}
  b: {window: 10s, dimensions: [region], measures: {errors: sum(errors)}}`;

describe('planRulesChange', () => {
  it('sorts every rule into exactly one of added, changed, removed, unchanged, waiting', () => {
    const before = rules(VIEWS, `  same: {view: a, condition: "errors > 5"}\n  edited: {view: a, condition: "errors > 5"}\n  dropped: {view: b, condition: "errors > 5"}\n  parked: {view: b, condition: "errors > 1"}`, ['a']);
    expect(before.waiting.map((w) => w.name)).toEqual(['dropped', 'parked']);
    const after = rules(VIEWS, `  same: {view: a, condition: "errors > 5"}\n  edited: {view: a, condition: "errors > 5", for: 1m}\n  parked: {view: b, condition: "errors > 1"}\n  newer: {view: a, condition: "errors > 1"}`);
    expect(planRulesChange(before, after)).toEqual({ added: ['newer', 'parked'], changed: ['edited'], removed: ['dropped'], unchanged: ['same'], waiting: [] });
  });

  it('counts a rule as changed when only its view was redefined, and keeps its keys only if the dimensions stay', () => {
    const before = rules(VIEWS, `  r: {view: a, condition: "errors > 5"}`);
    const measure = rules(VIEWS.replace('sum(errors)}}', 'sum(errors), n: count(*)}}'), `  r: {view: a, condition: "errors > 5"}`);
    const dims = rules(VIEWS.replace('dimensions: [host]', 'dimensions: [host, region]'), `  r: {view: a, condition: "errors > 5"}`);
    expect(planRulesChange(before, measure).changed).toEqual(['r']);
    expect(keysKeepMeaning(before.running[0]!, measure.running[0]!)).toBe(true);
    expect(keysKeepMeaning(before.running[0]!, dims.running[0]!)).toBe(false);
    expect(planRulesChange(before, rules(VIEWS, `  r: {view: a, condition: "errors > 5"}`)).unchanged).toEqual(['r']);
  });
});
