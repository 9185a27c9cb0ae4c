import type { ClearablePromise } from 'p-timeout';
import { runInContext, type TaskContext } from './context.js';
import { CancelledError, ShutdownError, TimeoutError } from './errors.js';
import type { AnyFunction, EventName, EventSource, Events, MethodName, TaskPayload } from './events.js';
import type { ResolvedPolicy } from './options.js';
import type { Gate, GateJob } from './policies/gate.js';
import type { RateLimiter } from './policies/rate-limit.js';
import { retry, wrapFailure } from './policies/retry.js';
import { withTimeout } from './policies/timeout.js';

/** How the work of a task is called. */
export const Kind = Object.freeze({ CALL: 0, PROMISE: 1, CALLBACK: 2, DEFERRED: 3 } as const);
export type Kind = (typeof Kind)[keyof typeof Kind];

/**
 * A task handed to the caller: a real `Promise` (it works with `await`, `Promise.all` and
 * `instanceof Promise`) that also carries its execution id and can be cancelled.
 */
export interface Task<R> extends Promise<R> {
  /** The execution id; the same string as the payloads' `executionId` and `current().id`. */
  readonly id: string;
  /**
   * Cancels the task: it rejects with `CancelledError` at once (even if the function ignores its
   * signal), emits `cancelled`, and is not retried. The running attempt's signal is aborted.
   * @param reason - Kept as the error's `cause`.
   * @returns `false` when the task had already settled.
   */
  cancel(reason?: unknown): boolean;
}

/** Receives the outcome of an execution that has no `Task` of its own (a `map` item). */
export interface Sink {
  settled(execution: Execution, ok: boolean, value: unknown): void;
}

/** Instance state the executions share; owned by `Dovetail`. */
export interface Core {
  readonly events: Events;
  readonly gate: Gate | undefined;
  readonly limiter: RateLimiter | undefined;
  /** Executions not yet settled. */
  readonly live: Set<Execution>;
  /** Waiting for the gate or the rate limiter. */
  pending: number;
  /** Running (between the first start and settling). */
  active: number;
  /** `shutdown({ wait: false })` began: no further attempt starts. */
  stopping: boolean;
  /** Called when `live` becomes empty. */
  drained(): void;
}

const QUEUED = 0;
const RUNNING = 1;
const SETTLED = 2;

const noop = (): void => {};
let sequence = 0;

/** The context of one attempt; its signal is made only when someone reads it. */
class AttemptContext implements TaskContext {
  readonly id: string;
  readonly attempt: number;
  readonly function: string;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  constructor(id: string, attempt: number, name: string) {
    this.id = id;
    this.attempt = attempt;
    this.function = name;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

const call = (work: AnyFunction, args: readonly unknown[]): unknown => {
  const fn = work as (...a: readonly unknown[]) => unknown;
  switch (args.length) {
    case 0:
      return fn();
    case 1:
      return fn(args[0]);
    case 2:
      return fn(args[0], args[1]);
    default:
      return fn(...args);
  }
};

const callWithCallback = (work: AnyFunction, args: readonly unknown[]): Promise<unknown> =>
  new Promise((resolve, reject) => {
    let called = false;
    // A second call of the callback is ignored; a synchronous throw rejects (the executor
    // catches it), unless the callback already answered.
    (work as (...a: readonly unknown[]) => unknown)(...args, (error: unknown, value: unknown) => {
      if (called) return;
      called = true;
      if (error !== null && error !== undefined) reject(error);
      else resolve(value);
    });
  });

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === 'object' || typeof value === 'function') &&
  typeof (value as PromiseLike<unknown>).then === 'function';

/**
 * One execution of one task: gate → rate limit → retry(timeout(attempt)) → events. Written as a
 * small state machine rather than an async function, so that `cancel()` can settle it at once
 * whatever the attempt is doing, and so that a task that succeeds at once allocates no retry
 * loop, no timer and no limiter wait.
 */
export class Execution implements GateJob, EventSource {
  readonly id: string;
  readonly seq: number;
  readonly fn: AnyFunction | undefined;
  channelContext: Record<string, unknown> | undefined;
  /** The `map` slot this execution fills. */
  index = 0;

  readonly #core: Core;
  readonly #policy: ResolvedPolicy;
  readonly #method: MethodName;
  readonly #kind: Kind;
  readonly #work: unknown;
  readonly #args: readonly unknown[];
  readonly #sink: Sink | undefined;
  #resolve: ((value: unknown) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  #task: Task<unknown> | undefined;

  #state: 0 | 1 | 2 = QUEUED;
  #attempt = 0;
  #context: AttemptContext | undefined;
  #startedAt = -1;
  #controller: AbortController | undefined;
  #release: (() => void) | undefined;
  #timer: ClearablePromise<unknown> | undefined;
  #retrying = false;
  #sleeping = false;
  #attemptResolve: ((value: unknown) => void) | undefined;
  #attemptReject: ((error: unknown) => void) | undefined;
  #onSignal: (() => void) | undefined;

  constructor(
    core: Core,
    policy: ResolvedPolicy,
    method: MethodName,
    kind: Kind,
    work: unknown,
    args: readonly unknown[],
    fn: AnyFunction | undefined,
    sink: Sink | undefined,
  ) {
    this.seq = ++sequence;
    this.id = String(this.seq);
    this.#core = core;
    this.#policy = policy;
    this.#method = method;
    this.#kind = kind;
    this.#work = work;
    this.#args = args;
    this.fn = fn;
    this.#sink = sink;
  }

  /** The `Task` promise for this execution (made once, for `schedule` and friends). */
  task<R>(): Task<R> {
    if (this.#task === undefined) {
      const task = new Promise<unknown>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      }) as Task<unknown> & { id: string; cancel: (reason?: unknown) => boolean };
      task.id = this.id;
      task.cancel = (reason?: unknown): boolean => this.cancel(reason);
      this.#task = task;
    }
    return this.#task as Task<R>;
  }

  /** Whether the execution has settled. */
  get settled(): boolean {
    return this.#state === SETTLED;
  }

  /** Enters the instance: counts, announces, and queues for the gate. */
  start(): void {
    const core = this.#core;
    core.live.add(this);
    core.pending += 1;
    const events = core.events;
    events.counters.queued += 1;
    if (events.wants('queued', this)) events.publish(this.#payload('queued'), this);
    const signal = this.#policy.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.cancel(signal.reason);
        return;
      }
      this.#onSignal = () => this.cancel(signal.reason);
      signal.addEventListener('abort', this.#onSignal, { once: true });
    }
    if (core.gate !== undefined) core.gate.run(this);
    else queueMicrotask(() => void this.run());
  }

  /** Called by the gate once a slot is free; holds the slot until the returned promise settles. */
  run(): Promise<void> | void {
    if (this.#state !== QUEUED) return; // Cancelled while it waited for the slot.
    this.#state = RUNNING;
    this.#attemptNext(1);
    if (this.#core.gate === undefined || (this.#state as number) === SETTLED) return;
    return new Promise<void>((resolve) => {
      this.#release = resolve;
    });
  }

  /** Called by a gate that cannot grant a slot (a shared back end that failed). */
  reject(error: unknown): void {
    if (this.#state === SETTLED) return;
    this.#settle(false, error, 'error');
  }

  /**
   * Cancels the execution at once. @returns `false` when it had already settled.
   */
  cancel(reason?: unknown): boolean {
    if (this.#state === SETTLED) return false;
    const error =
      reason === undefined ? new CancelledError() : new CancelledError(undefined, { cause: reason });
    this.#settle(false, error, 'cancelled');
    return true;
  }

  /**
   * `shutdown({ wait: false })`: cancel what has not started, cancel what sleeps between
   * retries, abort the signal of what runs.
   */
  stop(reason: ShutdownError): void {
    if (this.#state === SETTLED) return;
    if (this.#attempt === 0 || this.#sleeping) {
      this.cancel(reason);
      return;
    }
    this.#context?.abort(reason);
  }

  // ---- attempts ------------------------------------------------------------------------------

  #attemptNext(attempt: number): void {
    this.#sleeping = false;
    const limiter = this.#core.limiter;
    if (limiter === undefined) {
      this.#launch(attempt, -1);
      return;
    }
    let waited: number | Promise<number>;
    try {
      waited = limiter.acquire(this.#signal());
    } catch (error) {
      this.#refused(error);
      return;
    }
    if (typeof waited === 'number') this.#launch(attempt, waited);
    else
      waited.then(
        (ms) => this.#launch(attempt, ms),
        (error: unknown) => {
          // Aborted because the task settled: nothing to do. Anything else is a back-end failure.
          if (this.#state !== SETTLED) this.#refused(error);
        },
      );
  }

  /**
   * The limiter could not give a token (a shared back end failed): the task fails with that error,
   * unretried. Not `#fail`: the attempt never launched, so `#fail` would not recognise it.
   */
  #refused(error: unknown): void {
    if (this.#state !== RUNNING) return;
    this.#settle(false, error, 'error');
    // A retry loop waiting on this attempt ends too (it sees the task settled).
    this.#attemptReject?.(error);
  }

  #launch(attempt: number, waited: number): void {
    if (this.#state !== RUNNING) return;
    const core = this.#core;
    const events = core.events;
    if (core.stopping) {
      this.cancel(new ShutdownError('instance is shutting down'));
      return;
    }
    if (waited > 0) {
      events.counters.throttled += 1;
      if (events.wants('rate_limited', this)) {
        const payload = this.#payload('rate_limited');
        payload.attempt = attempt;
        payload.waited = waited;
        events.publish(payload, this);
      }
    }
    if (attempt === 1) {
      core.pending -= 1;
      core.active += 1;
    }
    this.#attempt = attempt;
    const context = new AttemptContext(this.id, attempt, this.#name());
    this.#context = context;
    events.counters.started += 1;
    if (events.wants('started', this)) {
      if (this.#startedAt < 0) this.#startedAt = performance.now();
      const payload = this.#payload('started');
      payload.attempt = attempt;
      events.publish(payload, this);
    } else if (this.#startedAt < 0 && (events.wants('done', this) || events.wants('error', this))) {
      this.#startedAt = performance.now();
    }
    let out: unknown;
    try {
      out = this.#invoke(context);
    } catch (error) {
      this.#fail(attempt, error);
      return;
    }
    if (!isThenable(out)) {
      this.#succeed(attempt, out);
      return;
    }
    const timeout = this.#policy.timeout;
    if (timeout !== Infinity) {
      const timed = withTimeout(out, timeout, (error) => context.abort(error));
      this.#timer = timed;
      out = timed;
    }
    (out as PromiseLike<unknown>).then(
      (value) => this.#succeed(attempt, value),
      (error: unknown) => this.#fail(attempt, error),
    );
  }

  #invoke(context: AttemptContext): unknown {
    const work = this.#work;
    switch (this.#kind) {
      case Kind.CALL:
        return runInContext(context, call, work as AnyFunction, this.#args);
      case Kind.PROMISE:
        return work;
      case Kind.CALLBACK:
        return runInContext(context, callWithCallback, work as AnyFunction, this.#args);
      default:
        // toThread: a later macrotask, so the caller's turn of the event loop finishes first.
        return new Promise((resolve, reject) => {
          setImmediate(() => {
            if (this.#state === SETTLED) {
              resolve(undefined);
              return;
            }
            try {
              resolve(runInContext(context, call, work as AnyFunction, this.#args));
            } catch (error) {
              reject(error);
            }
          });
        });
    }
  }

  #succeed(attempt: number, value: unknown): void {
    if (this.#state !== RUNNING || attempt !== this.#attempt) return;
    this.#clearTimer();
    if (this.#retrying) this.#attemptResolve?.(value);
    else this.#settle(true, value, 'done');
  }

  #fail(attempt: number, error: unknown): void {
    if (this.#state !== RUNNING || attempt !== this.#attempt) return;
    this.#clearTimer();
    if (this.#retrying) {
      this.#attemptReject?.(wrapFailure(error));
      return;
    }
    const policy = this.#policy;
    if (policy.retries > 0 && this.#kind !== Kind.PROMISE) {
      this.#retrying = true;
      retry(error, policy.retries, policy.retryBackoff, this.#signal(), {
        attempt: (next) => this.#retryAttempt(next),
        shouldRetry: (value, failed, sleep) => this.#shouldRetry(value, failed, sleep),
      }).then(
        (value) => {
          if (this.#state === RUNNING) this.#settle(true, value, 'done');
        },
        (final: unknown) => {
          if (this.#state === RUNNING) this.#settle(false, final, 'error');
        },
      );
      return;
    }
    this.#settle(false, error, 'error');
  }

  #retryAttempt(attempt: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#attemptResolve = resolve;
      this.#attemptReject = reject;
      this.#attemptNext(attempt);
    });
  }

  #shouldRetry(error: unknown, attempt: number, sleep: number): boolean {
    if (this.#state !== RUNNING || this.#core.stopping) return false;
    if (error instanceof CancelledError || error instanceof ShutdownError) return false;
    const decide = this.#policy.shouldRetry;
    if (decide !== undefined && !decide(error, attempt)) return false;
    this.#sleeping = true;
    const events = this.#core.events;
    events.counters.retries += 1;
    if (events.wants('retry', this)) {
      const payload = this.#payload('retry');
      payload.attempt = attempt;
      payload.sleep = sleep;
      payload.error = error;
      events.publish(payload, this);
    }
    return true;
  }

  // ---- settling ------------------------------------------------------------------------------

  #settle(ok: boolean, value: unknown, event: 'done' | 'error' | 'cancelled'): void {
    const core = this.#core;
    const wasRunning = this.#attempt > 0;
    this.#state = SETTLED;
    if (wasRunning) core.active -= 1;
    else core.pending -= 1;
    const events = core.events;
    events.counters[event] += 1;
    this.#clearTimer();
    if (event === 'cancelled') {
      this.#context?.abort(value);
      this.#controller?.abort(value);
      this.#attemptReject?.(value);
    }
    const signal = this.#policy.signal;
    if (this.#onSignal !== undefined && signal !== undefined) signal.removeEventListener('abort', this.#onSignal);
    this.#release?.();
    core.live.delete(this);
    if (events.wants(event, this)) {
      const payload = this.#payload(event);
      if (wasRunning) payload.attempt = this.#attempt;
      if (this.#startedAt >= 0) payload.elapsed = performance.now() - this.#startedAt;
      if (!ok) {
        payload.error = value;
        if (value instanceof TimeoutError) payload.timeout = value.timeout;
      }
      events.publish(payload, this);
    }
    events.releaseExecution(this.id);
    if (this.#sink !== undefined) this.#sink.settled(this, ok, value);
    else if (ok) this.#resolve?.(value);
    else {
      // A cancelled task nobody awaits must not crash the process as an unhandled rejection:
      // cancelling is the caller's own decision. Errors of the work itself are left alone.
      if (event === 'cancelled') this.#task?.catch(noop);
      this.#reject?.(value);
    }
    if (core.live.size === 0) core.drained();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.#timer.clear();
      this.#timer = undefined;
    }
  }

  /** The execution's own signal, for waits between attempts (token, retry sleep). */
  #signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  #name(): string {
    return this.fn === undefined ? '<promise>' : this.fn.name || '<anonymous>';
  }

  #payload(event: EventName): TaskPayload {
    const payload: TaskPayload = {
      event,
      method: this.#method,
      task: this.seq,
      executionId: this.id,
    };
    if (this.fn !== undefined) payload.function = this.fn.name || '<anonymous>';
    return payload;
  }
}
