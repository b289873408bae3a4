/**
 * The life of one alert instance (one rule × one combination of the view's dimensions), as a
 * pure function of its previous state and one observation. No I/O, no clock: `nowMs` comes in.
 *
 *   inactive ──condition──► pending ──condition held for `for`──► firing ──clear──► resolved
 *       ▲                      │                                    │  ▲              │
 *       └──── not condition ───┘                  repeat reminders ─┘  └── (via pending) ◄── condition
 *
 * - `for` holds back flapping on the way up: pending falls back to inactive as soon as the
 *   condition is false, so only a condition held for `for` fires (as in Prometheus).
 * - `clear` holds back flapping on the way down (hysteresis): a firing instance resolves only when
 *   the clear condition is true and the firing condition is not. Without a `clear`, the caller
 *   passes `clearTrue = !conditionTrue`.
 * - Firing and resolved are notified once each per episode; `repeat` adds reminders while firing,
 *   at least `repeatMs` apart.
 */

export type AlertStatus = 'inactive' | 'pending' | 'firing' | 'resolved';

export interface InstanceState {
  readonly status: AlertStatus;
  /** When the instance entered `status` (processing time). */
  readonly sinceMs: number;
  /** When the last firing notification or reminder was produced; null unless firing. */
  readonly lastNotifiedAtMs: number | null;
}

export interface Observation<V> {
  /** The rule's condition is true (NULL counts as false). */
  readonly conditionTrue: boolean;
  /** The rule's clear condition is true (no data, or NULL, counts as true). */
  readonly clearTrue: boolean;
  /** The measures behind the observation, carried into the transitions; null when no data. */
  readonly value: V;
  readonly nowMs: number;
}

export interface AlertTiming {
  readonly forMs: number;
  /** Interval of reminders while firing; null for none. */
  readonly repeatMs: number | null;
}

/**
 * A change worth recording. `status` is the state entered; a reminder keeps `firing`.
 * `notify` is true for what receivers hear about: firing, reminders and resolved.
 */
export interface Transition<V> {
  readonly status: AlertStatus;
  readonly reminder: boolean;
  readonly notify: boolean;
  /** When the instance entered `status`; for a reminder, when it started firing. */
  readonly sinceMs: number;
  readonly atMs: number;
  readonly value: V;
}

export interface Step<V> {
  readonly state: InstanceState;
  readonly transitions: readonly Transition<V>[];
}

export const INACTIVE: InstanceState = Object.freeze({ status: 'inactive', sinceMs: 0, lastNotifiedAtMs: null });

/** Whether an instance in this state needs an observation every evaluation, data or not. */
export function isActive(state: InstanceState): boolean {
  return state.status === 'pending' || state.status === 'firing';
}

export function stepAlert<V>(state: InstanceState, observation: Observation<V>, timing: AlertTiming): Step<V> {
  const { conditionTrue, clearTrue, value, nowMs } = observation;
  const enter = (status: AlertStatus, notify: boolean): Step<V> => ({
    state: { status, sinceMs: nowMs, lastNotifiedAtMs: status === 'firing' ? nowMs : null },
    transitions: [{ status, reminder: false, notify, sinceMs: nowMs, atMs: nowMs, value }],
  });
  switch (state.status) {
    case 'inactive':
    case 'resolved':
      if (!conditionTrue) return { state, transitions: [] };
      return timing.forMs <= 0 ? enter('firing', true) : enter('pending', false);
    case 'pending':
      if (!conditionTrue) return enter('inactive', false);
      return nowMs - state.sinceMs >= timing.forMs ? enter('firing', true) : { state, transitions: [] };
    case 'firing':
      if (clearTrue && !conditionTrue) return enter('resolved', true);
      if (timing.repeatMs !== null && nowMs - (state.lastNotifiedAtMs ?? state.sinceMs) >= timing.repeatMs) {
        return {
          state: { ...state, lastNotifiedAtMs: nowMs },
          transitions: [{ status: 'firing', reminder: true, notify: true, sinceMs: state.sinceMs, atMs: nowMs, value }],
        };
      }
      return { state, transitions: [] };
  }
}
