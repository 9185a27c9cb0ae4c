/**
 * Options accepted by every Dovetail error, as for `Error`.
 */
export interface DovetailErrorOptions {
  /** The underlying reason, kept as `error.cause`. */
  cause?: unknown;
}

/**
 * Base class of every error Dovetail itself raises. User errors are never wrapped in it.
 *
 * @example
 * ```ts
 * import { Dovetail, DovetailError } from 'dovetailjs';
 * const dvt = new Dovetail();
 * const task = dvt.task.schedule(async () => 'ok');
 * try { await task; } catch (error) { if (error instanceof DovetailError) console.log(error.name); }
 * ```
 */
export class DovetailError extends Error {
  override readonly name: string = 'DovetailError';

  /**
   * @param message - What happened.
   * @param options - `{ cause }`, kept as `error.cause`.
   */
  constructor(message?: string, options?: DovetailErrorOptions) {
    super(message, options);
  }
}

/** Options of {@link TimeoutError}. */
export interface TimeoutErrorOptions extends DovetailErrorOptions {
  /** The limit that was exceeded, in milliseconds. */
  timeout?: number;
}

/**
 * An attempt ran longer than the `timeout` policy allows. The attempt's signal is aborted with it.
 *
 * @example
 * ```ts
 * import { Dovetail, TimeoutError } from 'dovetailjs';
 * const dvt = new Dovetail({ timeout: 50 });
 * await dvt.task.schedule(() => new Promise(() => {})).catch((error: unknown) => {
 *   if (error instanceof TimeoutError) console.log(`gave up after ${error.timeout} ms`);
 * });
 * ```
 */
export class TimeoutError extends DovetailError {
  override readonly name = 'TimeoutError';
  /** The limit that was exceeded, in milliseconds (`NaN` when not given). */
  readonly timeout: number;

  /**
   * @param message - What happened; defaults to `timed out after <timeout> ms`.
   * @param options - `{ cause, timeout }`.
   */
  constructor(message?: string, options?: TimeoutErrorOptions) {
    const timeout = options?.timeout ?? Number.NaN;
    super(message ?? `timed out after ${timeout} ms`, options);
    this.timeout = timeout;
  }
}

/**
 * A task was cancelled: by `task.cancel()`, by its `signal`, by a failing `map`, or by
 * `shutdown({ wait: false })` while it was still queued. `cause` holds the reason given.
 *
 * @example
 * ```ts
 * import { CancelledError, Dovetail } from 'dovetailjs';
 * const dvt = new Dovetail();
 * const task = dvt.task.schedule(() => new Promise((resolve) => setTimeout(resolve, 1000)));
 * task.cancel('not needed');
 * await task.catch((error: unknown) => console.log(error instanceof CancelledError)); // true
 * ```
 */
export class CancelledError extends DovetailError {
  override readonly name = 'CancelledError';

  /**
   * @param message - What happened; defaults to `task cancelled`.
   * @param options - `{ cause }`: the cancellation reason.
   */
  constructor(message?: string, options?: DovetailErrorOptions) {
    super(message ?? 'task cancelled', options);
  }
}

/**
 * The instance's shutdown stopped or refused the work: work submitted after `shutdown()` began,
 * a stream that a shutdown ended, a wait (`events.once()`) the shutdown outlived; and, as the
 * `cause` of a `CancelledError`, tasks cancelled by `shutdown({ wait: false })`.
 *
 * @example
 * ```ts
 * import { Dovetail, ShutdownError } from 'dovetailjs';
 * const dvt = new Dovetail();
 * await dvt.shutdown();
 * await dvt.task.schedule(() => 1).catch((error: unknown) => console.log(error instanceof ShutdownError));
 * ```
 */
export class ShutdownError extends DovetailError {
  override readonly name = 'ShutdownError';

  /**
   * @param message - What happened; defaults to `instance is shut down`.
   * @param options - `{ cause }`.
   */
  constructor(message?: string, options?: DovetailErrorOptions) {
    super(message ?? 'instance is shut down', options);
  }
}

/**
 * Options of {@link BackendError}.
 * @example
 * ```ts
 * import { BackendError } from 'dovetailjs';
 * const error = new BackendError('Redis unreachable', { key: 'payments-api', cause: new Error('ECONNREFUSED') });
 * ```
 */
export interface BackendErrorOptions extends DovetailErrorOptions {
  /** The shared limit's key (for `dovetailjs/redis`, the `key` option). */
  key?: string | undefined;
}

/**
 * A shared back end (for example `dovetailjs/redis`) could not grant a slot or a token within its
 * bounded wait: the store is unreachable, too slow, or refused the command. `key` names the
 * shared limit and `cause` holds the underlying error.
 *
 * @example
 * ```ts
 * import { BackendError, Dovetail } from 'dovetailjs';
 * const dvt = new Dovetail();
 * await dvt.task.schedule(async () => 1).catch((error: unknown) => {
 *   if (error instanceof BackendError) console.error(`limit ${error.key} unavailable`, error.cause);
 * });
 * ```
 */
export class BackendError extends DovetailError {
  override readonly name = 'BackendError';
  /** The shared limit's key, when known. */
  readonly key: string | undefined;

  /**
   * @param message - What happened; defaults to `shared back end failed` plus the key.
   * @param options - `{ cause, key }`.
   */
  constructor(message?: string, options?: BackendErrorOptions) {
    const key = options?.key;
    super(
      message ?? `shared back end failed${key === undefined ? '' : ` for key "${key}"`}`,
      options,
    );
    this.key = key;
  }
}

/** Options of {@link QueueFullError}. */
export interface QueueFullErrorOptions extends DovetailErrorOptions {
  /** The `maxQueue` the queue was full at. */
  maxQueue?: number | undefined;
}

/**
 * A task arrived at a full queue (`maxQueue`): it, or with `queueOverflow: 'drop-oldest'` the
 * oldest waiting task of the lowest priority, fails with this error. Its function never runs.
 *
 * @example
 * ```ts
 * import { Dovetail, QueueFullError } from 'dovetailjs';
 * const dvt = new Dovetail({ concurrency: 1, maxQueue: 0 });
 * void dvt.task.schedule(() => new Promise((resolve) => setTimeout(resolve, 10)));
 * await dvt.task.schedule(async () => 1).catch((error: unknown) => {
 *   if (error instanceof QueueFullError) console.log('shed at', error.maxQueue);
 * });
 * ```
 */
export class QueueFullError extends DovetailError {
  /** Always `'QueueFullError'`. */
  override readonly name = 'QueueFullError';
  /** The `maxQueue` the queue was full at (`NaN` when not given). */
  readonly maxQueue: number;

  /**
   * @param message - What happened; defaults to `queue is full (maxQueue <maxQueue>)`.
   * @param options - `{ cause, maxQueue }`.
   */
  constructor(message?: string, options?: QueueFullErrorOptions) {
    const maxQueue = options?.maxQueue ?? Number.NaN;
    super(message ?? `queue is full (maxQueue ${maxQueue})`, options);
    this.maxQueue = maxQueue;
  }
}

/** Options of {@link CircuitOpenError}. */
export interface CircuitOpenErrorOptions extends DovetailErrorOptions {
  /**
   * When the circuit turns half-open: epoch milliseconds; `Infinity` for an isolated circuit
   * (open until `reset()`).
   */
  retryAt?: number | undefined;
}

/** `circuit is open until <ISO date>`, or what can be said without a date. */
function openUntil(retryAt: number): string {
  if (retryAt === Infinity) return 'circuit is open until reset()';
  if (Number.isNaN(retryAt)) return 'circuit is open';
  const date = new Date(retryAt);
  return `circuit is open until ${Number.isNaN(date.getTime()) ? `${retryAt} (epoch ms)` : date.toISOString()}`;
}

/**
 * The circuit breaker refused an attempt: the circuit is open (or half-open with all its trial
 * attempts started), so the task fails at once, whatever retries remain, and its function is
 * not called. `retryAt` says when the circuit turns half-open; for an isolated circuit it is
 * `Infinity`. While half-open it is the end of the open period just over (a time already past):
 * a trial is running, and the circuit's next state depends on it.
 *
 * The attempts refused within one open (or half-open) period may share one error object, as
 * the listeners of one aborted signal share its reason: read it, do not change it.
 *
 * @example
 * ```ts
 * import { CircuitOpenError, Dovetail } from 'dovetailjs';
 * const dvt = new Dovetail();
 * await dvt.task.schedule(async () => 1).catch((error: unknown) => {
 *   if (!(error instanceof CircuitOpenError)) throw error;
 *   const when = error.retryAt === Infinity ? 'after reset()' : new Date(error.retryAt).toISOString();
 *   console.log(`upstream is down; trials start ${when}`);
 * });
 * ```
 */
export class CircuitOpenError extends DovetailError {
  /** Always `'CircuitOpenError'`. */
  override readonly name = 'CircuitOpenError';
  /**
   * When the circuit turns half-open: epoch milliseconds; `Infinity` for an isolated circuit,
   * `NaN` when not given.
   */
  readonly retryAt: number;

  /**
   * @param message - What happened; defaults to `circuit is open until <retryAt as an ISO date>`
   * (`until reset()` for `Infinity`).
   * @param options - `{ cause, retryAt }`.
   */
  constructor(message?: string, options?: CircuitOpenErrorOptions) {
    const retryAt = options?.retryAt ?? Number.NaN;
    super(message ?? openUntil(retryAt), options);
    this.retryAt = retryAt;
  }
}
