import { assertFunction, assertNumber } from '../internal/assert.js';
import { assertChoice } from '../queue/options.js';

/**
 * How retry delays are spread. With d = `retryBackoff * 2 ** (n - 1)` for retry n: `'none'`
 * sleeps d exactly; `'full'` uniform [0, d]; `'equal'` d/2 + uniform [0, d/2]; `'decorrelated'`
 * uniform [`retryBackoff`, 3 × the previous sleep] (the first previous sleep is `retryBackoff`).
 */
export type RetryJitter = 'none' | 'full' | 'equal' | 'decorrelated';

/**
 * Decides the delay before the next attempt, from the value attempt `attempt` failed with: a
 * number >= 0 is the delay in ms (still capped by `retryMaxDelay`, not jittered), `undefined`
 * keeps the computed one. A throw fails the task with what it threw; another value with a
 * RangeError.
 */
export type RetryDelayFunction = (error: unknown, attempt: number) => number | undefined;

/** The retry-delay options, shared by the instance, `with()` and `map`. */
export interface RetryDelayOptions {
  /**
   * How retry delays are spread (see {@link RetryJitter}).
   * @defaultValue `'none'`
   */
  retryJitter?: RetryJitter | undefined;
  /**
   * Cap on every retry delay, in ms (>= 0), applied last: after jitter and to a `retryDelay`
   * result.
   * @defaultValue `Infinity`
   */
  retryMaxDelay?: number | undefined;
  /**
   * The delay before the next attempt, per failure: a `Retry-After` read from a 429, say
   * (`retryDelay: (error) => retryAfter(error.response)` for an error that keeps its response).
   * @defaultValue the computed backoff
   */
  retryDelay?: RetryDelayFunction | undefined;
}

/** The retry-delay fields of a policy. */
export interface ResolvedRetryDelay {
  readonly retryJitter: RetryJitter;
  readonly retryMaxDelay: number;
  readonly retryDelay: RetryDelayFunction | undefined;
}

const JITTERS: readonly string[] = ['none', 'full', 'equal', 'decorrelated'];

/** Validates the retry-delay options and merges them over `base`. */
export function resolveRetryDelay(
  base: ResolvedRetryDelay,
  options: RetryDelayOptions,
): ResolvedRetryDelay {
  const { retryJitter, retryMaxDelay, retryDelay } = options;
  if (retryJitter !== undefined) assertChoice('retryJitter', retryJitter, JITTERS);
  if (retryMaxDelay !== undefined) {
    assertNumber('retryMaxDelay', retryMaxDelay);
    if (!(retryMaxDelay >= 0)) {
      throw new RangeError(`\`retryMaxDelay\` must be a number >= 0, received ${retryMaxDelay}`);
    }
  }
  if (retryDelay !== undefined) assertFunction('retryDelay', retryDelay);
  return {
    retryJitter: retryJitter ?? base.retryJitter,
    retryMaxDelay: retryMaxDelay ?? base.retryMaxDelay,
    retryDelay: retryDelay ?? base.retryDelay,
  };
}
