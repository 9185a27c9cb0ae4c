import type { Backend } from './policies/backend.js';
import {
  resolveAdaptive,
  type AdaptiveOptions,
  type ResolvedAdaptive,
} from './latency/adaptive-options.js';
import {
  resolveCircuitOptions,
  type CircuitBreakerOptions,
  type ResolvedCircuitOptions,
} from './resilience/circuit-options.js';
import { resolveHedge, type HedgeOptions, type ResolvedHedge } from './latency/hedge-options.js';
import {
  resolveRetryDelay,
  type ResolvedRetryDelay,
  type RetryDelayOptions,
} from './resilience/backoff.js';
import {
  resolveQueueOptions,
  resolveRate,
  resolveTaskQueue,
  type CostLimits,
  type QueueOptions,
  type ResolvedQueueOptions,
  type ResolvedRate,
  type TaskQueueFields,
} from './queue/options.js';
import {
  assertBoolean,
  assertCount,
  assertFunction,
  assertNonNegative,
  assertObject,
  assertPositive,
  assertRetries,
  assertSignal,
  assertString,
} from './internal/assert.js';

/** A logger for trace lines: any object with a `debug(message)` method (`console`, pino, winston). */
export interface TraceLogger {
  /** Receives one finished trace line. */
  debug(message: string): void;
}

/** Token bucket on task starts (every attempt takes a token). */
export interface RateLimitOptions {
  /** Tokens added per second; > 0. */
  perSecond: number;
  /**
   * Most tokens saved up, so the most starts at once after a quiet spell; >= 1.
   * @defaultValue `perSecond`
   */
  burst?: number | undefined;
}

/**
 * Decides whether a failed attempt is retried. Called only while retries are left, with the
 * value the function threw (unchanged) and the attempt that failed (1-based).
 */
export type ShouldRetry = (error: unknown, attempt: number) => boolean;

/** Options of `new Dovetail(options)`. Every field may be left out or given as `undefined`. */
export interface DovetailOptions extends QueueOptions, RetryDelayOptions {
  /**
   * Most tasks running at once through this instance: an integer >= 1, or `Infinity`; or
   * `'adaptive'`: a limit that follows the latency of attempts, tuned by `adaptive`
   * (see {@link AdaptiveOptions}).
   * @defaultValue `Infinity`
   */
  concurrency?: number | 'adaptive' | undefined;
  /**
   * Tuning of `concurrency: 'adaptive'` (its bounds, what counts as an overload); given without
   * it, a TypeError.
   * @defaultValue `{ min: 1, initial: 20, max: 1000, isOverload: (e) => e instanceof TimeoutError }`
   */
  adaptive?: AdaptiveOptions | undefined;
  /**
   * Limit of one attempt, in milliseconds (> 0; `Infinity` means none). An attempt that runs
   * longer rejects with `TimeoutError` and its signal is aborted.
   * @defaultValue none
   */
  timeout?: number | undefined;
  /**
   * Extra attempts after the first failure: an integer >= 0.
   * @defaultValue `0`
   */
  retries?: number | undefined;
  /**
   * Base delay in milliseconds: retry n waits `retryBackoff * 2 ** (n - 1)`.
   * @defaultValue `0`
   */
  retryBackoff?: number | undefined;
  /**
   * Token bucket on task starts; `burst` defaults to `perSecond`.
   * @defaultValue none
   * @example `{ perSecond: 100, burst: 10 }`
   */
  rateLimit?: RateLimitOptions | undefined;
  /**
   * Decides per failure whether to retry; `CancelledError` and `ShutdownError` are never retried.
   * @defaultValue retry every failure
   */
  shouldRetry?: ShouldRetry | undefined;
  /**
   * Write a trace line per lifecycle step.
   * @defaultValue `DOVETAIL_TRACE` is `1`, `true`, `yes` or `on` (any case)
   */
  trace?: boolean | undefined;
  /**
   * Where trace lines go.
   * @defaultValue `console`
   */
  traceLogger?: TraceLogger | undefined;
  /**
   * Trace lines carry `DVT-<tracePrefix>`.
   * @defaultValue `'Dovetail'`
   */
  tracePrefix?: string | undefined;
  /**
   * Shut down on SIGINT/SIGTERM (one process-level handler for all instances).
   * @defaultValue `true`
   */
  shutdownOnExit?: boolean | undefined;
  /**
   * Appear in `listActive()` and `shutdownAll()`.
   * @defaultValue `true`
   */
  autoRegister?: boolean | undefined;
  /**
   * A circuit breaker on the instance's attempts: after too many failures it fails tasks at once
   * with `CircuitOpenError` (no call, no token, no slot) until a trial succeeds.
   * @defaultValue none
   */
  circuitBreaker?: CircuitBreakerOptions | undefined;
  /**
   * Hedged requests: an attempt of a function task that has not settled after `delay` gets up
   * to `max` extra copies; the first success wins and the others are aborted. See
   * {@link HedgeOptions}.
   * @defaultValue none
   */
  hedge?: HedgeOptions | undefined;
  /**
   * Where the gate and the rate limiter live; in this process by default.
   * @defaultValue in-process (`p-limit` and a token bucket)
   */
  backend?: Backend | undefined;
}

/** Per-call policy overrides, for `dvt.task.with(overrides)`. */
export interface TaskOverrides extends RetryDelayOptions {
  /** Limit of one attempt in ms; see {@link DovetailOptions.timeout}. */
  timeout?: number | undefined;
  /** Extra attempts; see {@link DovetailOptions.retries}. */
  retries?: number | undefined;
  /** Base delay in ms; see {@link DovetailOptions.retryBackoff}. */
  retryBackoff?: number | undefined;
  /** Cancels the task when aborted: it rejects with `CancelledError` whose `cause` is `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Decides per failure whether to retry; see {@link DovetailOptions.shouldRetry}. */
  shouldRetry?: ShouldRetry | undefined;
  /**
   * A finite number: higher starts first, equal priorities keep submission order. It orders every
   * wait: the gate, the rate limiter, a pause and the per-key limits.
   * @defaultValue `0`
   */
  priority?: number | undefined;
  /** The task also passes the limits of this key (`perKey`); payloads carry it. */
  key?: string | undefined;
  /**
   * Rate-limit tokens each attempt takes: > 0 and <= the `burst` of every bucket the task passes.
   * @defaultValue `1`
   */
  cost?: number | undefined;
  /** Hedged requests for this call; see {@link DovetailOptions.hedge}. */
  hedge?: HedgeOptions | undefined;
}

/** The policy one task runs under: instance options merged with `with()` overrides. */
export interface ResolvedPolicy extends ResolvedRetryDelay {
  readonly timeout: number;
  readonly retries: number;
  readonly retryBackoff: number;
  readonly shouldRetry: ShouldRetry | undefined;
  readonly signal: AbortSignal | undefined;
  readonly priority: number;
  readonly key: string | undefined;
  readonly cost: number;
  readonly hedge: ResolvedHedge | undefined;
}

/** Instance options after validation and defaults. */
export interface ResolvedOptions extends ResolvedQueueOptions {
  readonly circuit: ResolvedCircuitOptions | undefined;
  /** With `'adaptive'`: its `initial`. */
  readonly concurrency: number;
  readonly adaptive: ResolvedAdaptive | undefined;
  readonly rateLimit: ResolvedRate | undefined;
  readonly policy: ResolvedPolicy;
  readonly trace: boolean;
  readonly traceLogger: TraceLogger;
  readonly tracePrefix: string;
  readonly shutdownOnExit: boolean;
  readonly autoRegister: boolean;
  readonly backend: Backend | undefined;
}

/** Defaults of every option, frozen. */
export const DEFAULTS = Object.freeze({
  /** No limit on tasks running at once. */
  concurrency: Infinity,
  /** No per-attempt time limit. */
  timeout: Infinity,
  /** No retries. */
  retries: 0,
  /** Retries follow at once. */
  retryBackoff: 0,
  /** Trace lines carry `DVT-Dovetail`. */
  tracePrefix: 'Dovetail',
  /** Shut down on SIGINT/SIGTERM. */
  shutdownOnExit: true,
  /** Appear in `listActive()` and `shutdownAll()`. */
  autoRegister: true,
  /** `mapIterable` concurrency when the instance has none. */
  mapIterableConcurrency: 16,
} as const);

const ON = new Set(['1', 'true', 'yes', 'on']);

/** `DOVETAIL_TRACE` read as a switch: 1, true, yes, on (any case) mean on; anything else off. */
export function traceFromEnv(): boolean {
  const raw = process.env['DOVETAIL_TRACE'];
  return raw !== undefined && ON.has(raw.trim().toLowerCase());
}

/** Validates the fields shared by the instance options, `with()` overrides and map options. @internal */
export function resolvePolicy(
  base: ResolvedPolicy,
  options: TaskOverrides,
  where: string,
  queue: TaskQueueFields = base,
): ResolvedPolicy {
  const { timeout, retries, retryBackoff, shouldRetry, signal, hedge } = options;
  const delay = resolveRetryDelay(base, options);
  if (timeout !== undefined) assertPositive(`${where}timeout`, timeout);
  if (retries !== undefined) assertRetries(`${where}retries`, retries);
  if (retryBackoff !== undefined) assertNonNegative(`${where}retryBackoff`, retryBackoff);
  if (shouldRetry !== undefined) assertFunction(`${where}shouldRetry`, shouldRetry);
  if (signal !== undefined) assertSignal(`${where}signal`, signal);
  const hedging = hedge === undefined ? base.hedge : resolveHedge(hedge, `${where}hedge`);
  return Object.freeze({
    timeout: timeout ?? base.timeout,
    retries: retries ?? base.retries,
    retryBackoff: retryBackoff ?? base.retryBackoff,
    ...delay,
    shouldRetry: shouldRetry ?? base.shouldRetry,
    signal: signal ?? base.signal,
    priority: queue.priority,
    key: queue.key,
    cost: queue.cost,
    hedge: hedging,
  });
}

const BASE_POLICY: ResolvedPolicy = Object.freeze({
  timeout: DEFAULTS.timeout,
  retries: DEFAULTS.retries,
  retryBackoff: DEFAULTS.retryBackoff,
  retryJitter: 'none',
  retryMaxDelay: Infinity,
  retryDelay: undefined,
  shouldRetry: undefined,
  signal: undefined,
  priority: 0,
  key: undefined,
  cost: 1,
  hedge: undefined,
});

/**
 * Validates `new Dovetail(options)` once, up front.
 * @throws TypeError for a wrong type, RangeError for a value out of range; both name the option.
 */
export function resolveOptions(options: DovetailOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  assertObject('options', options);
  const {
    concurrency,
    rateLimit,
    trace,
    traceLogger,
    tracePrefix,
    shutdownOnExit,
    autoRegister,
    backend,
  } = options;
  const adaptive = resolveAdaptive(concurrency, options.adaptive);
  if (adaptive === undefined && concurrency !== undefined) assertCount('concurrency', concurrency);
  const limit = rateLimit === undefined ? undefined : resolveRate('rateLimit', rateLimit);
  if (trace !== undefined) assertBoolean('trace', trace);
  if (traceLogger !== undefined) {
    assertObject('traceLogger', traceLogger);
    assertFunction('traceLogger.debug', (traceLogger as { debug?: unknown }).debug);
  }
  if (tracePrefix !== undefined) assertString('tracePrefix', tracePrefix);
  if (shutdownOnExit !== undefined) assertBoolean('shutdownOnExit', shutdownOnExit);
  if (autoRegister !== undefined) assertBoolean('autoRegister', autoRegister);
  if (backend !== undefined) {
    assertObject('backend', backend);
    const { createGate, createRateLimiter } = backend as {
      createGate?: unknown;
      createRateLimiter?: unknown;
    };
    assertFunction('backend.createGate', createGate);
    assertFunction('backend.createRateLimiter', createRateLimiter);
  }
  if ('signal' in options && options.signal !== undefined) {
    // Not an instance option: a signal belongs to a call (`with({ signal })`, `map(..., { signal })`).
    throw new TypeError(
      '`signal` is not an instance option; pass it to `with({ signal })` or to `map()`',
    );
  }
  return Object.freeze({
    ...resolveQueueOptions(options),
    circuit: resolveCircuitOptions(options.circuitBreaker),
    concurrency: adaptive?.initial ?? (concurrency as number | undefined) ?? DEFAULTS.concurrency,
    adaptive,
    rateLimit: limit,
    policy: resolvePolicy(BASE_POLICY, options, ''),
    trace: trace ?? traceFromEnv(),
    traceLogger: traceLogger ?? console,
    tracePrefix: tracePrefix ?? DEFAULTS.tracePrefix,
    shutdownOnExit: shutdownOnExit ?? DEFAULTS.shutdownOnExit,
    autoRegister: autoRegister ?? DEFAULTS.autoRegister,
    backend,
  });
}

/**
 * Validates `with(overrides)` and merges them over `base`.
 * @throws TypeError / RangeError naming the override.
 */
export function resolveOverrides(
  base: ResolvedPolicy,
  overrides: TaskOverrides | undefined,
  limits: CostLimits,
): ResolvedPolicy {
  if (overrides === undefined) return base;
  assertObject('overrides', overrides);
  const queue = resolveTaskQueue(base, overrides, limits, false);
  return resolvePolicy(base, overrides, '', queue);
}
