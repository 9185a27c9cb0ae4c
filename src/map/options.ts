import {
  assertBoolean,
  assertCount,
  assertFunction,
  assertObject,
  assertSignal,
} from '../internal/assert.js';
import { resolvePolicy, type ResolvedPolicy, type ShouldRetry } from '../options.js';
import { resolveTaskQueue, type CostLimits } from '../queue/options.js';
import type { RetryDelayOptions } from '../resilience/backoff.js';
import type { ProgressCallback } from './progress.js';

/** Options of `map` and `mapIterable` (`T`: the item type, for the `key` function). */
export interface MapOptions<T = unknown> extends RetryDelayOptions {
  /**
   * Most items running at once for this call; the instance gate still applies.
   * @defaultValue the instance's `concurrency` (for `mapIterable`: that when finite, else 16)
   */
  concurrency?: number | undefined;
  /**
   * Keep each failure at its index as the thrown value, instead of failing fast.
   * @defaultValue `false`
   */
  returnErrors?: boolean | undefined;
  /** Aborting rejects the call with `signal.reason`, starts no new item and aborts the running ones. */
  signal?: AbortSignal | undefined;
  /** Per-attempt limit in ms for this call's items; see {@link DovetailOptions.timeout}. */
  timeout?: number | undefined;
  /** Extra attempts for this call's items; see {@link DovetailOptions.retries}. */
  retries?: number | undefined;
  /** Base delay in ms for this call's items; see {@link DovetailOptions.retryBackoff}. */
  retryBackoff?: number | undefined;
  /** Decides per failure whether to retry; see {@link DovetailOptions.shouldRetry}. */
  shouldRetry?: ShouldRetry | undefined;
  /** Priority of this call's items; see {@link TaskOverrides.priority}. */
  priority?: number | undefined;
  /** The key of each item: one string for all, or `(item, index) => string`. */
  key?: string | ((item: T, index: number) => string) | undefined;
  /** Tokens each attempt of an item takes; see {@link TaskOverrides.cost}. */
  cost?: number | undefined;
  /**
   * Called after each item settles with `{ done, failed, running, total }` (see
   * {@link MapProgress}). A throw or rejection is reported like a listener error (a
   * `DOVETAIL_LISTENER_ERROR` warning) and never fails the call. A fatal failure is the last
   * call: the items it cancels are not counted.
   */
  onProgress?: ProgressCallback | undefined;
}

/** `map` / `mapIterable` options after validation. */
export interface ResolvedMapOptions {
  readonly concurrency: number;
  readonly returnErrors: boolean;
  readonly signal: AbortSignal | undefined;
  /** The policy of this call's items. */
  readonly policy: ResolvedPolicy;
  /** The key of each item, when given as a function. */
  readonly keyOf: ((item: never, index: number) => string) | undefined;
  readonly onProgress: ProgressCallback | undefined;
}

/**
 * Validates `map(fn, items, options)` options; policy fields override `base` for this call's
 * items (the signal stays the call's own: it stops the whole call).
 * @throws TypeError / RangeError naming the option.
 */
export function resolveMapOptions<T>(
  options: MapOptions<T> | undefined,
  fallbackConcurrency: number,
  base: ResolvedPolicy,
  limits: CostLimits,
): ResolvedMapOptions {
  if (options === undefined) {
    return {
      concurrency: fallbackConcurrency,
      returnErrors: false,
      signal: undefined,
      policy: base,
      keyOf: undefined,
      onProgress: undefined,
    };
  }
  assertObject('options', options);
  const {
    concurrency,
    returnErrors,
    signal,
    timeout,
    retries,
    retryBackoff,
    shouldRetry,
    retryJitter,
    retryMaxDelay,
    retryDelay,
    onProgress,
  } = options;
  if (concurrency !== undefined) assertCount('concurrency', concurrency);
  if (returnErrors !== undefined) assertBoolean('returnErrors', returnErrors);
  if (signal !== undefined) assertSignal('signal', signal);
  if (onProgress !== undefined) assertFunction('onProgress', onProgress);
  const queue = resolveTaskQueue(base, options, limits, true);
  const overridden =
    timeout !== undefined ||
    retries !== undefined ||
    retryBackoff !== undefined ||
    shouldRetry !== undefined ||
    retryJitter !== undefined ||
    retryMaxDelay !== undefined ||
    retryDelay !== undefined ||
    queue.priority !== base.priority ||
    queue.key !== base.key ||
    queue.cost !== base.cost;
  return {
    concurrency: concurrency ?? fallbackConcurrency,
    returnErrors: returnErrors ?? false,
    signal,
    policy: overridden
      ? resolvePolicy(
          base,
          { timeout, retries, retryBackoff, shouldRetry, retryJitter, retryMaxDelay, retryDelay },
          '',
          queue,
        )
      : base,
    keyOf: queue.keyOf,
    onProgress,
  };
}
