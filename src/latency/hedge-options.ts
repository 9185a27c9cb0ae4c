import { assertNumber, assertObject, describe } from '../internal/assert.js';

/**
 * When a hedge is sent: a fixed delay in milliseconds, or a percentile of the instance's recent
 * attempt latencies (`'p95'` is the 95th).
 *
 * @example
 * ```ts
 * import type { HedgeDelay } from 'dovetailjs';
 * const fixed: HedgeDelay = 30;
 * const tail: HedgeDelay = 'p95';
 * ```
 */
export type HedgeDelay = number | 'p50' | 'p90' | 'p95' | 'p99';

/**
 * Hedged requests (option `hedge`, also a `with()` override): when an attempt of a function task
 * has not settled after `delay`, an extra copy of the same attempt starts, and the first copy to
 * succeed settles the task; the others' signals are aborted. A hedge starts only into a gate slot
 * and a rate-limit token that are free at that moment (for a keyed task with `perKey` limits, its
 * key's slot and token too), and never while the circuit is not closed.
 *
 * @example
 * ```ts
 * import { Dovetail, currentTask, type HedgeOptions } from 'dovetailjs';
 * // A second request after the 95th percentile of recent latencies, as "The Tail at Scale" does.
 * const hedge: HedgeOptions = { delay: 'p95' };
 * const dvt = new Dovetail({ concurrency: 20, hedge, autoRegister: false, shutdownOnExit: false });
 * const body = await dvt.task.schedule(async () => {
 *   const { signal } = currentTask()!;
 *   return (await fetch('http://127.0.0.1:9/', { signal }).catch(() => undefined))?.status;
 * });
 * ```
 */
export interface HedgeOptions {
  /**
   * How long an attempt runs before a hedge starts, and between hedges: milliseconds (a number
   * >= 0; `Infinity` sends none), or `'p50'`, `'p90'`, `'p95'`, `'p99'`: that percentile of the
   * instance's recent attempt latencies. A percentile sends no hedge until 20 attempts were
   * measured.
   */
  delay: HedgeDelay;
  /**
   * Most extra copies per attempt: an integer >= 1. They start one per `delay`.
   * @defaultValue `1`
   */
  max?: number | undefined;
}

/** The hedge options after validation and defaults. */
export interface ResolvedHedge {
  /** The fixed delay in ms; `NaN` when a percentile decides. */
  readonly delay: number;
  /** The percentile as a quantile (`0.95`), or `undefined` for a fixed delay. */
  readonly quantile: number | undefined;
  readonly max: number;
}

/** Defaults of the hedge options, frozen. */
export const HEDGE_DEFAULTS = Object.freeze({
  /** One extra copy per attempt. */
  max: 1,
  /** Attempts measured before a percentile delay sends a hedge. */
  minimumSamples: 20,
} as const);

const PERCENTILES: Readonly<Record<string, number>> = Object.freeze({
  p50: 0.5,
  p90: 0.9,
  p95: 0.95,
  p99: 0.99,
});

/**
 * Validates the `hedge` option; `undefined` when it is not given.
 * @param value - The option as given.
 * @param name - The option's name in messages.
 * @returns The options with their defaults, frozen; `undefined` for no hedging.
 * @throws TypeError for a wrong type; RangeError for a value out of range or a percentile that is
 * not one of the four. Each names the option and the value received.
 */
export function resolveHedge(value: unknown, name = 'hedge'): ResolvedHedge | undefined {
  if (value === undefined) return undefined;
  assertObject(name, value);
  const { delay, max } = value as { [K in keyof HedgeOptions]?: unknown };
  let fixed = Number.NaN;
  let quantile: number | undefined;
  if (typeof delay === 'string') {
    quantile = Object.hasOwn(PERCENTILES, delay) ? PERCENTILES[delay] : undefined;
    if (quantile === undefined) {
      throw new RangeError(
        `\`${name}.delay\` must be a number >= 0 or one of 'p50', 'p90', 'p95', 'p99', received ${describe(delay)}`,
      );
    }
  } else if (typeof delay === 'number') {
    assertNumber(`${name}.delay`, delay);
    if (!(delay >= 0)) {
      throw new RangeError(`\`${name}.delay\` must be a number >= 0, received ${delay}`);
    }
    fixed = delay;
  } else {
    throw new TypeError(
      `\`${name}.delay\` must be a number or one of 'p50', 'p90', 'p95', 'p99', received ${describe(delay)}`,
    );
  }
  if (max !== undefined) {
    assertNumber(`${name}.max`, max);
    if (!(max >= 1) || !Number.isInteger(max)) {
      throw new RangeError(`\`${name}.max\` must be an integer >= 1, received ${max}`);
    }
  }
  return Object.freeze({ delay: fixed, quantile, max: max ?? HEDGE_DEFAULTS.max });
}
