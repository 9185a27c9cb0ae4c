import { TimeoutError } from '../errors.js';
import { assertFunction, assertNumber, assertObject, describe } from '../internal/assert.js';

/**
 * Tuning of `concurrency: 'adaptive'`: the bounds of the limit and what counts as an overload.
 *
 * The limit is recomputed once per window of attempts (at least 250 ms and 10 successes), never
 * per task, so it changes at most 4 times a second. Per window it compares the median `median`
 * of the successful attempts' latencies with the no-load `reference` (the lowest window median
 * since the last probe): `gradient = clamp(reference / median, 0.5, 1)`,
 * `limit = gradient * limit + sqrt(limit)`. While latency stays at the reference the limit grows
 * by `sqrt(limit)` a window; when latency rises with load (the upstream queues) it falls toward
 * the upstream's capacity plus a small queue, settling at about 1.3-1.4 × the concurrency the
 * upstream serves at once. A window with an overload multiplies it by 0.75 instead. Probes, one
 * window at half the limit, measure the reference again: 1 s after the first window (and again
 * 1 s later while they lower it by 10% or more), then every 30 s (it may have risen for good).
 * The algorithm follows Envoy's adaptive-concurrency filter and Netflix's concurrency-limits
 * gradient; the README says why and gives the constants.
 *
 * One instance should talk to one kind of upstream: a mix of fast and slow calls through one
 * instance reads the slow ones as queueing.
 * @example
 * ```ts
 * import { Dovetail, TimeoutError } from 'dovetailjs';
 * const dvt = new Dovetail({
 *   concurrency: 'adaptive',
 *   timeout: 2_000,
 *   adaptive: {
 *     min: 2,
 *     max: 64,
 *     initial: 8,
 *     isOverload: (error) =>
 *       error instanceof TimeoutError || (error as { status?: number }).status === 503,
 *   },
 * });
 * ```
 */
export interface AdaptiveOptions {
  /**
   * The lowest the limit goes: an integer >= 1.
   * @defaultValue `1`
   */
  min?: number | undefined;
  /**
   * The highest the limit goes: an integer >= `min`.
   * @defaultValue `1000`
   */
  max?: number | undefined;
  /**
   * The limit before the first window: an integer within [`min`, `max`].
   * @defaultValue `20` (within [`min`, `max`] when only those are given)
   */
  initial?: number | undefined;
  /**
   * Whether a failed attempt's error means the upstream is overloaded (a 503, a 429, a timeout):
   * such a window cuts the limit to 0.75 ×. Other failures say nothing of latency and are left
   * out. A throwing `isOverload` counts as `false`.
   * @defaultValue `error instanceof TimeoutError`
   */
  isOverload?: ((error: unknown) => boolean) | undefined;
}

/** `adaptive` after validation and defaults. */
export interface ResolvedAdaptive {
  readonly min: number;
  readonly max: number;
  readonly initial: number;
  readonly isOverload: (error: unknown) => boolean;
}

const isTimeout = (error: unknown): boolean => error instanceof TimeoutError;

/** An integer >= 1 (finite). */
function assertBound(name: string, value: unknown): asserts value is number {
  assertNumber(name, value);
  if (!(value >= 1) || !Number.isInteger(value))
    throw new RangeError(`\`${name}\` must be an integer >= 1, received ${value}`);
}

/**
 * Validates `concurrency` (a count or `'adaptive'`) and `adaptive`. Returns the resolved adaptive
 * options, or `undefined` when the concurrency is fixed.
 * @throws TypeError / RangeError naming the option and the value.
 */
export function resolveAdaptive(
  concurrency: unknown,
  adaptive: unknown,
): ResolvedAdaptive | undefined {
  if (concurrency !== 'adaptive') {
    // A string is the wrong type for a count ('4' included), as before 'adaptive' existed.
    if (typeof concurrency === 'string')
      throw new TypeError(
        `\`concurrency\` must be an integer >= 1, Infinity or 'adaptive', received ${describe(concurrency)}`,
      );
    if (adaptive !== undefined)
      throw new TypeError("`adaptive` applies only with `concurrency: 'adaptive'`");
    return undefined;
  }
  if (adaptive === undefined) adaptive = {};
  assertObject('adaptive', adaptive);
  const { min, max, initial, isOverload } = adaptive as AdaptiveOptions;
  if (min !== undefined) assertBound('adaptive.min', min);
  if (max !== undefined) assertBound('adaptive.max', max);
  if (initial !== undefined) assertBound('adaptive.initial', initial);
  if (isOverload !== undefined) assertFunction('adaptive.isOverload', isOverload);
  const low = min ?? 1;
  const high = max ?? Math.max(1000, low);
  if (high < low)
    throw new RangeError(`\`adaptive.max\` must be >= \`adaptive.min\` (${low}), received ${high}`);
  const start = initial ?? Math.min(high, Math.max(low, 20));
  if (start < low || start > high)
    throw new RangeError(
      `\`adaptive.initial\` must be within [${low}, ${high}] (\`adaptive.min\`, \`adaptive.max\`), received ${start}`,
    );
  return Object.freeze({
    min: low,
    max: high,
    initial: start,
    isOverload: isOverload ?? isTimeout,
  });
}
