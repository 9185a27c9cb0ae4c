import {
  assertFunction,
  assertNumber,
  assertObject,
  assertPositive,
  describe,
} from '../internal/assert.js';

/**
 * Ratio mode of the circuit breaker: it opens when, within the last `window` ms, at least
 * `minimumCalls` attempts ended and the share of failures among them is at least `failures`.
 *
 * @example
 * ```ts
 * import type { CircuitRatioOptions } from 'dovetailjs';
 * // Open when half of the attempts of the last 10 s failed, once 20 of them ended.
 * const ratio: CircuitRatioOptions = { failures: 0.5, window: 10_000, minimumCalls: 20 };
 * ```
 */
export interface CircuitRatioOptions {
  /** The share of failures that opens the circuit: a number > 0 and <= 1 (`0.5` is half). */
  failures: number;
  /**
   * How far back outcomes count, in milliseconds: a number > 0, or `Infinity` for every outcome
   * since the circuit last closed. The window moves in steps of a tenth of itself: it holds
   * every outcome younger than `0.9 * window` and none older than `window`.
   */
  window: number;
  /**
   * Fewest outcomes within the window before the share is judged at all: an integer >= 1.
   * @defaultValue `10`
   */
  minimumCalls?: number | undefined;
}

/**
 * The circuit breaker of an instance (option `circuitBreaker`). It counts the outcomes of
 * attempts (a timeout is a failure). Closed, it opens after `threshold` failures in a row, or,
 * with `ratio` instead, when the share of failures within a time window is too high. Open, an
 * attempt that would start fails at once with `CircuitOpenError`. After `halfOpenAfter` ms it is
 * half-open: `halfOpenCalls` trial attempts start; when all of them succeed it closes, and a
 * trial that fails opens it again.
 *
 * Give one of `threshold` or `ratio`, not both (a `TypeError`); with neither it opens after 5
 * failures in a row.
 *
 * @example
 * ```ts
 * import type { CircuitBreakerOptions } from 'dovetailjs';
 * const breaker: CircuitBreakerOptions = {
 *   threshold: 3,
 *   halfOpenAfter: 10_000,
 *   // A 404 means the upstream is up: it does not count as a failure.
 *   isFailure: (error) => !(error instanceof Error && 'status' in error && error.status === 404),
 * };
 * ```
 */
export interface CircuitBreakerOptions {
  /**
   * Failures in a row that open the circuit (consecutive mode): an integer >= 1. A success (or
   * an error that `isFailure` does not count) resets the count. Not with `ratio`.
   * @defaultValue `5` (when `ratio` is not given)
   */
  threshold?: number | undefined;
  /**
   * Ratio mode instead of consecutive failures: see {@link CircuitRatioOptions}. Not with
   * `threshold`.
   * @defaultValue none: consecutive mode
   */
  ratio?: CircuitRatioOptions | undefined;
  /**
   * How long the circuit stays open before trial attempts may start, in milliseconds: a number
   * > 0. `Infinity` holds it open until `reset()`.
   * @defaultValue `30_000`
   */
  halfOpenAfter?: number | undefined;
  /**
   * Trial attempts let through per half-open period, in total, and how many of them must
   * succeed to close the circuit: an integer >= 1. Further attempts fail with
   * `CircuitOpenError` until the trials decide.
   * @defaultValue `1`
   */
  halfOpenCalls?: number | undefined;
  /**
   * Decides whether a failed attempt's error counts as a failure; an error it does not count is
   * a success for the breaker (the upstream answered). `CancelledError`, `ShutdownError`,
   * `QueueFullError` and `CircuitOpenError` never count, whatever it says: they tell nothing
   * about the upstream, so they are neither failures nor successes.
   * @defaultValue every error counts
   */
  isFailure?: ((error: unknown) => boolean) | undefined;
}

/** Ratio mode after validation. */
export interface ResolvedCircuitRatio {
  readonly failures: number;
  readonly window: number;
  readonly minimumCalls: number;
}

/** The circuit breaker options after validation and defaults. */
export interface ResolvedCircuitOptions {
  /** Failures in a row that open the circuit; `undefined` in ratio mode. */
  readonly threshold: number | undefined;
  /** Ratio mode; `undefined` in consecutive mode. */
  readonly ratio: ResolvedCircuitRatio | undefined;
  readonly halfOpenAfter: number;
  readonly halfOpenCalls: number;
  readonly isFailure: ((error: unknown) => boolean) | undefined;
}

/** Defaults of the circuit breaker options, frozen. */
export const CIRCUIT_DEFAULTS = Object.freeze({
  /** Five failures in a row open the circuit. */
  threshold: 5,
  /** Ratio mode judges a window once it holds ten outcomes. */
  minimumCalls: 10,
  /** Trials start 30 s after the circuit opened. */
  halfOpenAfter: 30_000,
  /** One trial attempt per half-open period. */
  halfOpenCalls: 1,
} as const);

/** An integer >= 1 (not Infinity: each of these is a count that must be reached). */
function assertWhole(name: string, value: unknown): asserts value is number {
  assertNumber(name, value);
  if (!(value >= 1) || !Number.isInteger(value)) {
    throw new RangeError(`\`${name}\` must be an integer >= 1, received ${value}`);
  }
}

function resolveRatio(name: string, ratio: unknown): ResolvedCircuitRatio {
  assertObject(name, ratio);
  const { failures, window, minimumCalls } = ratio as {
    failures?: unknown;
    window?: unknown;
    minimumCalls?: unknown;
  };
  assertNumber(`${name}.failures`, failures);
  if (!(failures > 0 && failures <= 1)) {
    throw new RangeError(
      `\`${name}.failures\` must be a number > 0 and <= 1, received ${failures}`,
    );
  }
  assertPositive(`${name}.window`, window);
  if (minimumCalls !== undefined) assertWhole(`${name}.minimumCalls`, minimumCalls);
  return Object.freeze({
    failures,
    window,
    minimumCalls: minimumCalls ?? CIRCUIT_DEFAULTS.minimumCalls,
  });
}

/**
 * Validates the `circuitBreaker` option; `undefined` (no breaker) when it is not given.
 * @param value - The option as given.
 * @param name - The option's name in messages.
 * @returns The options with their defaults, frozen; `undefined` for no breaker.
 * @throws TypeError for a wrong type, or for `threshold` and `ratio` given together; RangeError
 * for a value out of range. Each names the option and the value received.
 */
export function resolveCircuitOptions(
  value: unknown,
  name = 'circuitBreaker',
): ResolvedCircuitOptions | undefined {
  if (value === undefined) return undefined;
  assertObject(name, value);
  const { threshold, ratio, halfOpenAfter, halfOpenCalls, isFailure } = value as {
    [K in keyof CircuitBreakerOptions]?: unknown;
  };
  if (threshold !== undefined && ratio !== undefined) {
    throw new TypeError(
      `\`${name}\` takes one of \`threshold\` or \`ratio\`, received both: threshold ${describe(threshold)}, ratio ${describe(ratio)}`,
    );
  }
  if (threshold !== undefined) assertWhole(`${name}.threshold`, threshold);
  const resolvedRatio = ratio === undefined ? undefined : resolveRatio(`${name}.ratio`, ratio);
  if (halfOpenAfter !== undefined) assertPositive(`${name}.halfOpenAfter`, halfOpenAfter);
  if (halfOpenCalls !== undefined) assertWhole(`${name}.halfOpenCalls`, halfOpenCalls);
  if (isFailure !== undefined) assertFunction(`${name}.isFailure`, isFailure);
  return Object.freeze({
    threshold: resolvedRatio === undefined ? (threshold ?? CIRCUIT_DEFAULTS.threshold) : undefined,
    ratio: resolvedRatio,
    halfOpenAfter: halfOpenAfter ?? CIRCUIT_DEFAULTS.halfOpenAfter,
    halfOpenCalls: halfOpenCalls ?? CIRCUIT_DEFAULTS.halfOpenCalls,
    isFailure: isFailure as ((error: unknown) => boolean) | undefined,
  });
}
