import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INACTIVE, stepAlert, type AlertTiming, type InstanceState, type Observation, type Transition } from './alert-state.ts';

interface Sample {
  readonly conditionTrue: boolean;
  readonly clearTrue: boolean;
  readonly gapMs: number;
}

/** Runs observations through the machine from inactive; returns every step's state and transitions. */
function run(samples: readonly Sample[], timing: AlertTiming, startMs = 1_000) {
  let state: InstanceState = INACTIVE;
  let nowMs = startMs;
  const steps: { observation: Observation<number>; state: InstanceState; transitions: readonly Transition<number>[] }[] = [];
  samples.forEach((sample, i) => {
    nowMs += sample.gapMs;
    const observation = { conditionTrue: sample.conditionTrue, clearTrue: sample.clearTrue, value: i, nowMs };
    const step = stepAlert(state, observation, timing);
    state = step.state;
    steps.push({ observation, state, transitions: step.transitions });
  });
  return steps;
}

const timingArb = fc.record({
  forMs: fc.constantFrom(0, 100, 1_000, 5_000),
  repeatMs: fc.option(fc.constantFrom(1_000, 3_000), { nil: null }),
});

/** With no `clear` rule the evaluator passes clearTrue = !conditionTrue; with one, anything goes. */
const samplesArb = fc.boolean().chain((hasClear) =>
  fc.array(
    fc.record({ conditionTrue: fc.boolean(), clearTrue: fc.boolean(), gapMs: fc.constantFrom(50, 250, 1_000, 4_000) }).map((s) =>
      hasClear ? s : { ...s, clearTrue: !s.conditionTrue },
    ),
    { maxLength: 80 },
  ),
);

const noClear = (conditionTrue: boolean, gapMs = 1_000): Sample => ({ conditionTrue, clearTrue: !conditionTrue, gapMs });

describe('stepAlert', () => {
  it('fires after the condition holds for `for`, and resolves once it stops', () => {
    const steps = run([noClear(true), noClear(true), noClear(true), noClear(false), noClear(false)], { forMs: 2_000, repeatMs: null });
    expect(steps.map((s) => s.state.status)).toEqual(['pending', 'pending', 'firing', 'resolved', 'resolved']);
    expect(steps.flatMap((s) => s.transitions.filter((t) => t.notify).map((t) => [t.status, t.atMs]))).toEqual([
      ['firing', 4_000],
      ['resolved', 5_000],
    ]);
    expect(steps[2]!.state).toEqual({ status: 'firing', sinceMs: 4_000, lastNotifiedAtMs: 4_000 });
  });

  it('goes straight to firing when `for` is zero', () => {
    const [step] = run([noClear(true)], { forMs: 0, repeatMs: null });
    expect(step!.transitions).toEqual([{ status: 'firing', reminder: false, notify: true, sinceMs: 2_000, atMs: 2_000, value: 0 }]);
  });

  it('holds back a spike shorter than `for`: pending, then inactive, and nothing is notified', () => {
    const steps = run([noClear(true), noClear(true), noClear(false), noClear(true), noClear(false)], { forMs: 3_000, repeatMs: null });
    expect(steps.map((s) => s.state.status)).toEqual(['pending', 'pending', 'inactive', 'pending', 'inactive']);
    expect(steps.flatMap((s) => s.transitions).filter((t) => t.notify)).toEqual([]);
  });

  it('keeps firing while the value sits between the clear and the firing threshold (hysteresis)', () => {
    // condition: v > 500, clear: v < 400; v = 600, 450, 550, 450, 350
    const values = [600, 450, 550, 450, 350];
    const samples = values.map((v) => ({ conditionTrue: v > 500, clearTrue: v < 400, gapMs: 1_000 }));
    const steps = run(samples, { forMs: 0, repeatMs: null });
    expect(steps.map((s) => s.state.status)).toEqual(['firing', 'firing', 'firing', 'firing', 'resolved']);
    expect(steps.flatMap((s) => s.transitions).filter((t) => t.notify).map((t) => t.status)).toEqual(['firing', 'resolved']);
  });

  it('does not resolve while the firing condition is still true, even if clear is true too', () => {
    const steps = run([{ conditionTrue: true, clearTrue: false, gapMs: 1 }, { conditionTrue: true, clearTrue: true, gapMs: 1 }], {
      forMs: 0,
      repeatMs: null,
    });
    expect(steps.at(-1)!.state.status).toBe('firing');
  });

  it('reminds every `repeat` while firing, keeping the firing `since`', () => {
    const steps = run(Array.from({ length: 7 }, () => noClear(true)), { forMs: 0, repeatMs: 2_500 });
    const notified = steps.flatMap((s) => s.transitions.filter((t) => t.notify));
    expect(notified.map((t) => [t.reminder, t.atMs, t.sinceMs])).toEqual([
      [false, 2_000, 2_000],
      [true, 5_000, 2_000],
      [true, 8_000, 2_000],
    ]);
  });

  it('starts a new episode after resolving', () => {
    const steps = run([noClear(true), noClear(false), noClear(true)], { forMs: 0, repeatMs: null });
    expect(steps.flatMap((s) => s.transitions).map((t) => t.status)).toEqual(['firing', 'resolved', 'firing']);
    expect(steps.at(-1)!.state.sinceMs).toBe(4_000);
  });

  it('notifies firing and resolved alternately, once each, with reminders only in between', () => {
    fc.assert(
      fc.property(timingArb, samplesArb, (timing, samples) => {
        const kinds = run(samples, timing)
          .flatMap((s) => s.transitions)
          .filter((t) => t.notify)
          .map((t) => (t.reminder ? 'R' : t.status === 'firing' ? 'F' : 'X'))
          .join('');
        expect(kinds).toMatch(/^(FR*X)*(FR*)?$/);
      }),
    );
  });

  it('fires only after an unbroken run of true conditions lasting at least `for`', () => {
    fc.assert(
      fc.property(timingArb, samplesArb, (timing, samples) => {
        const steps = run(samples, timing);
        steps.forEach((step, i) => {
          if (!step.transitions.some((t) => t.status === 'firing' && !t.reminder)) return;
          let first = i;
          while (first > 0 && steps[first - 1]!.observation.conditionTrue) first--;
          expect(step.observation.conditionTrue).toBe(true);
          expect(step.observation.nowMs - steps[first]!.observation.nowMs).toBeGreaterThanOrEqual(timing.forMs);
        });
      }),
    );
  });

  it('resolves only when clear is true and the condition is not', () => {
    fc.assert(
      fc.property(timingArb, samplesArb, (timing, samples) => {
        for (const step of run(samples, timing)) {
          if (step.transitions.some((t) => t.status === 'resolved')) {
            expect(step.observation).toMatchObject({ clearTrue: true, conditionTrue: false });
          }
        }
      }),
    );
  });

  it('is firing at the end of any run of true conditions that lasted `for`, and not once cleared', () => {
    fc.assert(
      fc.property(timingArb, samplesArb, (timing, samples) => {
        const steps = run(samples, timing);
        const last = steps.at(-1);
        if (!last) return;
        let first = steps.length - 1;
        while (first > 0 && steps[first - 1]!.observation.conditionTrue) first--;
        if (last.observation.conditionTrue && last.observation.nowMs - steps[first]!.observation.nowMs >= timing.forMs) {
          expect(last.state.status).toBe('firing');
        }
        if (last.observation.clearTrue && !last.observation.conditionTrue) expect(last.state.status).not.toBe('firing');
      }),
    );
  });

  it('spaces reminders at least `repeat` apart and sends none without `repeat`', () => {
    fc.assert(
      fc.property(timingArb, samplesArb, (timing, samples) => {
        let lastNotifiedMs: number | null = null;
        for (const t of run(samples, timing).flatMap((s) => s.transitions)) {
          if (t.reminder) {
            expect(timing.repeatMs).not.toBeNull();
            expect(t.atMs - lastNotifiedMs!).toBeGreaterThanOrEqual(timing.repeatMs!);
          }
          if (t.status === 'firing') lastNotifiedMs = t.atMs;
        }
      }),
    );
  });

  it('records each state change exactly once: every transition changes the status, except reminders', () => {
    fc.assert(
      fc.property(timingArb, samplesArb, (timing, samples) => {
        let previous: InstanceState = INACTIVE;
        for (const step of run(samples, timing)) {
          for (const t of step.transitions) {
            if (!t.reminder) expect(t.status).not.toBe(previous.status);
          }
          expect(step.transitions.length).toBeLessThanOrEqual(1);
          if (step.transitions.length === 0) expect(step.state).toBe(previous);
          previous = step.state;
        }
      }),
    );
  });
});
