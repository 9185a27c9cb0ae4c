import { AsyncResource } from 'node:async_hooks';
import type { ClearablePromise } from 'p-timeout';
import { runInContext, type ContextSource, type TaskContext } from './context.js';
import { CancelledError, ShutdownError, TimeoutError } from './errors.js';
import type { Events } from './events/bus.js';
import type {
  AnyFunction,
  EventName,
  EventSource,
  MethodName,
  TaskPayload,
} from './events/types.js';
import type { ResolvedPolicy } from './options.js';
import type { Gate, GateJob } from './policies/gate.js';
import { TokenBucket, type RateLimiter, type TokenWait } from './policies/rate-limit.js';
import { retry, wrapFailure } from './policies/retry.js';
import { withTimeout } from './policies/timeout.js';

/** How the work of a task is called. */
export const Kind = Object.freeze({ CALL: 0, PROMISE: 1, CALLBACK: 2, DEFERRED: 3 } as const);
export type Kind = (typeof Kind)[keyof typeof Kind];

/**
 * A task handed to the caller: a real `Promise` (it works with `await`, `Promise.all` and
 * `instanceof Promise`) that also carries its execution id and can be cancelled.
 *
 * @example
 * ```ts
 * import { Dovetail, type Task } from 'dovetailjs';
 * const dvt = new Dovetail();
 * const task: Task<number> = dvt.task.schedule(async () => 42);
 * console.log(task.id, task instanceof Promise, await task);
 * ```
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

/** What a {@link TaskPromise} answers for. */
interface TaskOwner {
  readonly id: string;
  cancel(reason?: unknown): boolean;
}

/**
 * The promise handed out by `schedule()` and friends: a native promise whose `id` and `cancel`
 * live on the prototype, so that a task costs no id string, closure or property storage of its
 * own until someone asks for them (a profile of 100 000 queued tasks: about 200 bytes each).
 *
 * Its prototype's `constructor` is `Promise`, so it behaves as a plain promise everywhere: `await`
 * takes it as it is (no extra turn), and `then()` and `Promise.all()` derive plain promises.
 */
class TaskPromise<R> extends Promise<R> implements Task<R> {
  readonly #owner: TaskOwner;
  #cancel: ((reason?: unknown) => boolean) | undefined;

  constructor(
    executor: (resolve: (value: R) => void, reject: (error: unknown) => void) => void,
    owner: TaskOwner,
  ) {
    super(executor);
    this.#owner = owner;
  }

  get id(): string {
    return this.#owner.id;
  }

  /** Bound on first read, so that `const { cancel } = task` and `setTimeout(task.cancel)` work. */
  get cancel(): (reason?: unknown) => boolean {
    const owner = this.#owner;
    return (this.#cancel ??= (reason?: unknown): boolean => owner.cancel(reason));
  }
}
Reflect.defineProperty(TaskPromise.prototype, 'constructor', {
  value: Promise,
  writable: true,
  configurable: true,
});

// The promise executor writes here: a module-level function, so making a task allocates no
// closure nor context for it.
let capturedResolve: ((value: unknown) => void) | undefined;
let capturedReject: ((error: unknown) => void) | undefined;
const capture = (resolve: (value: unknown) => void, reject: (error: unknown) => void): void => {
  capturedResolve = resolve;
  capturedReject = reject;
};

/** Receives the outcome of an execution that has no `Task` of its own (a `map` item). */
export interface Sink {
  /** The async context of the `map()` call, in which every item runs. */
  readonly scope: AsyncResource;
  settled(execution: Execution, ok: boolean, value: unknown): void;
}

/** Instance state the executions share; owned by `Dovetail`. */
export interface Core {
  readonly events: Events;
  readonly gate: Gate | undefined;
  readonly limiter: RateLimiter | undefined;
  /** First of the executions not yet settled (an intrusive list: no per-task set entry). */
  liveHead: Execution | undefined;
  /** How many executions are not yet settled. */
  liveCount: number;
  /** Waiting for the gate or the rate limiter. */
  pending: number;
  /** Running (between the first start and settling). */
  active: number;
  /** `shutdown({ wait: false })` began: no further attempt starts. */
  stopping: boolean;
  /** Called when `liveCount` drops to 0. */
  drained(): void;
}

const QUEUED = 0;
const RUNNING = 1;
const SETTLED = 2;

const NOWHERE = 0;
const PENDING = 1;
const ACTIVE = 2;

const noop = (): void => {};
let sequence = 0;

/**
 * The async resource type of a task's scope (what async_hooks and AsyncLocalStorage see). Its
 * `destroy` is left to Node, which emits it at garbage collection, and only when some async hook
 * listens for it (an APM's context map would otherwise keep every task's entry).
 */
export const SCOPE = 'Dovetail';

// Executions with no gate start a microtask after they were scheduled, all those of one
// synchronous stretch in one microtask: Node's queueMicrotask() makes an AsyncResource and a bound
// function per call, which showed in the profile of 500 tasks submitted at once.
const resolved = Promise.resolve();
let due: Execution[] = [];
const runDue = (): void => {
  const now = due;
  due = [];
  for (const execution of now) execution.run(undefined);
};
function runSoon(execution: Execution): void {
  if (due.push(execution) === 1) void resolved.then(runDue);
}

// Tasks that share a `with({ signal })` signal share one abort listener, removed with the last of
// them: one per task would trip Node's MaxListenersExceededWarning at 11 tasks in flight.
interface Watchers {
  readonly members: Set<Execution>;
  readonly listener: () => void;
}
const watched = new WeakMap<AbortSignal, Watchers>();

function watch(signal: AbortSignal, execution: Execution): void {
  let group = watched.get(signal);
  if (group === undefined) {
    const members = new Set<Execution>();
    const listener = (): void => {
      watched.delete(signal);
      for (const member of [...members]) member.cancel(signal.reason);
    };
    group = { members, listener };
    watched.set(signal, group);
    signal.addEventListener('abort', listener, { once: true });
  }
  group.members.add(execution);
}

function unwatch(signal: AbortSignal, execution: Execution): void {
  const group = watched.get(signal);
  if (group === undefined) return;
  group.members.delete(execution);
  if (group.members.size === 0) {
    watched.delete(signal);
    signal.removeEventListener('abort', group.listener);
  }
}

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

/** What only some executions need; made on first use so that a plain task stays small. */
interface Rare {
  /** The execution's own signal, for waits between attempts (token, retry sleep). */
  controller: AbortController | undefined;
  /** The wait for a token from the in-process bucket, to call off if the task settles first. */
  tokenWait: TokenWait | undefined;
  /** The running attempt's timeout. */
  timer: ClearablePromise<unknown> | undefined;
  /** Why the running attempt was aborted, before anyone asked for its context. */
  abortReason: { reason: unknown } | undefined;
  retrying: boolean;
  sleeping: boolean;
  attemptResolve: ((value: unknown) => void) | undefined;
  attemptReject: ((error: unknown) => void) | undefined;
  channelContext: Record<string, unknown> | undefined;
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
    (work as (...a: readonly unknown[]) => unknown)(
      ...args,
      (error: unknown, value: unknown): void => {
        if (called) return;
        called = true;
        // Node-style APIs hand over whatever they fail with; it reaches the caller unchanged.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        if (error !== null && error !== undefined) reject(error);
        else resolve(value);
      },
    );
  });

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === 'object' || typeof value === 'function') &&
  typeof (value as PromiseLike<unknown>).then === 'function';

/**
 * One execution of one task: gate → rate limit → retry(timeout(attempt)) → events. Written as a
 * small state machine rather than an async function, so that `cancel()` can settle it at once
 * whatever the attempt is doing, and so that a task that succeeds at once allocates no retry
 * loop, no timer, no limiter wait, no AbortController and no context object.
 */
export class Execution implements GateJob, EventSource, ContextSource {
  readonly seq: number;

  readonly #core: Core;
  readonly #policy: ResolvedPolicy;
  readonly #method: MethodName;
  readonly #kind: Kind;
  readonly #work: unknown;
  readonly #args: readonly unknown[];
  readonly #sink: Sink | undefined;
  /** The async context of the call that scheduled the task: every attempt runs in it. */
  readonly #scope: AsyncResource;
  #resolve: ((value: unknown) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  #task: Task<unknown> | undefined;
  #state: 0 | 1 | 2 = QUEUED;
  /** Where the execution is counted: in `pending` until it holds its slot (and first token). */
  #counted: 0 | 1 | 2 = NOWHERE;
  #attempt = 0;
  #startedAt = -1;
  #context: AttemptContext | undefined;
  #rare: Rare | undefined;
  /** Gives the gate slot back; set while the execution holds one. */
  #release: (() => void) | undefined;
  #prev: Execution | undefined;
  #next: Execution | undefined;

  constructor(
    core: Core,
    policy: ResolvedPolicy,
    method: MethodName,
    kind: Kind,
    work: unknown,
    args: readonly unknown[],
    sink: Sink | undefined,
  ) {
    this.seq = ++sequence;
    this.#core = core;
    this.#policy = policy;
    this.#method = method;
    this.#kind = kind;
    this.#work = work;
    this.#args = args;
    this.#sink = sink;
    this.#scope = sink === undefined ? new AsyncResource(SCOPE) : sink.scope;
    // A promise handed over may reject while the task still waits for its slot or token: it is
    // observed from now on, so that wait is not reported as an unhandled rejection.
    if (kind === Kind.PROMISE && work instanceof Promise) work.catch(noop);
  }

  /** Cancels every execution of `core` not yet settled that reports to `sink`, oldest first. */
  static cancelFor(core: Core, sink: Sink, reason: unknown): void {
    const mine: Execution[] = [];
    for (let at = core.liveHead; at !== undefined; at = at.#next)
      if (at.#sink === sink) mine.push(at);
    for (let i = mine.length - 1; i >= 0; i--) (mine[i] as Execution).cancel(reason);
  }

  /** The task's function; undefined for a promise handed over as it is. */
  get fn(): AnyFunction | undefined {
    return this.#kind === Kind.PROMISE ? undefined : (this.#work as AnyFunction);
  }

  /** The `map` slot this execution fills: its second argument. */
  get index(): number {
    return this.#args[1] as number;
  }

  /** Every execution of `core` not yet settled, oldest first. */
  static live(core: Core): Execution[] {
    const all: Execution[] = [];
    for (let at = core.liveHead; at !== undefined; at = at.#next) all.push(at);
    return all;
  }

  /** The execution id: the same string as `Task.id` and the payloads' `executionId`. */
  get id(): string {
    return String(this.seq);
  }

  /** The `Task` promise for this execution (made once, for `schedule` and friends). */
  task<R>(): Task<R> {
    if (this.#task === undefined) {
      this.#task = new TaskPromise<unknown>(capture, this);
      this.#resolve = capturedResolve;
      this.#reject = capturedReject;
      capturedResolve = undefined;
      capturedReject = undefined;
    }
    return this.#task as Task<R>;
  }

  get channelContext(): Record<string, unknown> | undefined {
    return this.#rare?.channelContext;
  }

  set channelContext(value: Record<string, unknown> | undefined) {
    this.#more().channelContext = value;
  }

  /** The context of the attempt now running (made on first request). */
  context(): TaskContext {
    let context = this.#context;
    if (context === undefined || context.attempt !== this.#attempt) {
      context = new AttemptContext(this.id, this.#attempt, this.#functionName() ?? '<promise>');
      const aborted = this.#rare?.abortReason;
      if (aborted !== undefined) context.abort(aborted.reason);
      this.#context = context;
    }
    return context;
  }

  /** Enters the instance: counts, announces, and queues for the gate. */
  start(): void {
    const core = this.#core;
    const head = core.liveHead;
    if (head !== undefined) head.#prev = this;
    this.#next = head;
    core.liveHead = this;
    core.liveCount += 1;
    core.pending += 1;
    this.#counted = PENDING;
    const events = core.events;
    events.counters.queued += 1;
    if (events.wants('queued', this)) events.publish(this.#payload('queued'), this);
    const signal = this.#policy.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.cancel(signal.reason);
        return;
      }
      watch(signal, this);
    }
    if (core.gate !== undefined) core.gate.run(this);
    else {
      this.admitted();
      runSoon(this);
    }
  }

  /**
   * The gate reserved a slot: from now on the task counts as active, unless it still has to
   * wait for its first rate-limit token.
   */
  admitted(): void {
    if (this.#counted !== PENDING || this.#core.limiter !== undefined) return;
    this.#activate();
  }

  #activate(): void {
    const core = this.#core;
    core.pending -= 1;
    core.active += 1;
    this.#counted = ACTIVE;
  }

  /**
   * Called by the gate once a slot is free (and once the task is due, with no gate). The slot is
   * held until the execution settles, so a cancelled task frees its slot at once.
   */
  run(release: (() => void) | undefined): void {
    if (this.#state !== QUEUED) {
      // Cancelled while it waited for the slot.
      release?.();
      return;
    }
    this.#state = RUNNING;
    this.#release = release;
    this.#attemptNext(1);
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
      reason === undefined
        ? new CancelledError()
        : new CancelledError(undefined, { cause: reason });
    this.#settle(false, error, 'cancelled');
    return true;
  }

  /**
   * `shutdown({ wait: false })`: cancel what has not started, cancel what sleeps between
   * retries, abort the signal of what runs.
   */
  stop(reason: ShutdownError): void {
    if (this.#state === SETTLED) return;
    if (this.#attempt === 0 || this.#rare?.sleeping === true) {
      this.cancel(reason);
      return;
    }
    this.#abortAttempt(reason);
  }

  // ---- attempts ------------------------------------------------------------------------------

  #attemptNext(attempt: number): void {
    const rare = this.#rare;
    if (rare !== undefined) rare.sleeping = false;
    const limiter = this.#core.limiter;
    if (limiter === undefined) {
      this.#launch(attempt, 0);
      return;
    }
    let waited: number | Promise<number>;
    try {
      // The in-process bucket hands back a wait that can be called off directly: no
      // AbortController per task, which a profile of 500 rate-limited tasks showed to cost most.
      waited = limiter instanceof TokenBucket ? limiter.acquire() : limiter.acquire(this.#signal());
    } catch (error) {
      // The limiter could not give a token (a shared back end failed): the task fails with that
      // error, unretried.
      this.#settleFailure(error);
      return;
    }
    if (typeof waited === 'number') this.#launch(attempt, waited);
    else {
      if (typeof (waited as Partial<TokenWait>).cancel === 'function')
        this.#more().tokenWait = waited as TokenWait;
      waited.then(
        (ms) => {
          const rare = this.#rare;
          if (rare !== undefined) rare.tokenWait = undefined;
          this.#launch(attempt, ms);
        },
        (error: unknown) => {
          // Aborted because the task settled: nothing to do. Anything else is a back-end failure.
          if (this.#state !== SETTLED) this.#settleFailure(error);
        },
      );
    }
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
        if (this.#state !== RUNNING) return;
      }
    }
    if (this.#counted === PENDING) this.#activate();
    this.#attempt = attempt;
    const rare = this.#rare;
    if (rare !== undefined) rare.abortReason = undefined;
    events.counters.started += 1;
    // Always timed: a listener added while the task runs still gets its elapsed.
    if (this.#startedAt < 0) this.#startedAt = performance.now();
    if (events.wants('started', this)) {
      const payload = this.#payload('started');
      payload.attempt = attempt;
      events.publish(payload, this);
      // A listener may have cancelled the task (or shut the instance down): then nothing runs.
      if (this.#state !== RUNNING) return;
    }
    let out: unknown;
    try {
      // In the caller's async context: an AsyncLocalStorage store set around schedule() (a request
      // id, say) is there in the task, however long it waited and whichever task ran before.
      out = this.#scope.runInAsyncScope(this.#invoke, this);
    } catch (error) {
      this.#fail(attempt, error);
      return;
    }
    if (!isThenable(out)) {
      this.#succeed(attempt, out);
      return;
    }
    // A foreign thenable is adopted first: a then() that throws becomes a rejection, and no user
    // code runs inside withTimeout().
    let promise: Promise<unknown> = out instanceof Promise ? out : Promise.resolve(out);
    const timeout = this.#policy.timeout;
    if (timeout !== Infinity) {
      const timed = withTimeout(promise, timeout, (error) => this.#abortAttempt(error));
      this.#more().timer = timed;
      promise = timed;
    }
    promise.then(
      (value) => this.#succeed(attempt, value),
      (error: unknown) => this.#fail(attempt, error),
    );
  }

  #invoke(): unknown {
    const work = this.#work;
    switch (this.#kind) {
      case Kind.CALL:
        return runInContext(this, call, work as AnyFunction, this.#args);
      case Kind.PROMISE:
        return work;
      case Kind.CALLBACK:
        return runInContext(this, callWithCallback, work as AnyFunction, this.#args);
      default: {
        // toThread: a later macrotask, so the caller's turn of the event loop finishes first.
        const attempt = this.#attempt;
        return new Promise((resolve, reject) => {
          setImmediate(() => {
            if (this.#state === SETTLED || this.#attempt !== attempt) {
              resolve(undefined);
              return;
            }
            if (this.#core.stopping) {
              // Shut down without waiting before the body ran: it never runs.
              this.cancel(new ShutdownError('instance shut down before toThread() ran'));
              resolve(undefined);
              return;
            }
            try {
              resolve(runInContext(this, call, work as AnyFunction, this.#args));
            } catch (error) {
              reject(error);
            }
          });
        });
      }
    }
  }

  #succeed(attempt: number, value: unknown): void {
    if (this.#state !== RUNNING || attempt !== this.#attempt) return;
    const rare = this.#rare;
    if (rare === undefined) {
      this.#settle(true, value, 'done');
      return;
    }
    this.#clearTimer(rare);
    if (rare.retrying) rare.attemptResolve?.(value);
    else this.#settle(true, value, 'done');
  }

  #fail(attempt: number, error: unknown): void {
    if (this.#state !== RUNNING || attempt !== this.#attempt) return;
    const rare = this.#rare;
    if (rare !== undefined) {
      this.#clearTimer(rare);
      if (rare.retrying) {
        rare.attemptReject?.(wrapFailure(error));
        return;
      }
    }
    const policy = this.#policy;
    if (policy.retries > 0 && this.#kind !== Kind.PROMISE) {
      this.#more().retrying = true;
      retry(error, policy.retries, policy.retryBackoff, this.#signal(), {
        attempt: (next) => this.#retryAttempt(next),
        shouldRetry: (value, failed, sleep) => this.#shouldRetry(value, failed, sleep),
      }).then(
        (value) => {
          if (this.#state === RUNNING) this.#settle(true, value, 'done');
        },
        (final: unknown) => {
          if (this.#state === RUNNING) this.#settleFailure(final);
        },
      );
      return;
    }
    this.#settleFailure(error);
  }

  #retryAttempt(attempt: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const rare = this.#more();
      rare.attemptResolve = resolve;
      rare.attemptReject = reject;
      this.#attemptNext(attempt);
    });
  }

  #shouldRetry(error: unknown, attempt: number, sleep: number): boolean {
    if (this.#state !== RUNNING || this.#core.stopping) return false;
    if (error instanceof CancelledError || error instanceof ShutdownError) return false;
    const decide = this.#policy.shouldRetry;
    if (decide !== undefined && !decide(error, attempt)) return false;
    this.#more().sleeping = true;
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

  #abortAttempt(reason: unknown): void {
    const context = this.#context;
    if (context !== undefined && context.attempt === this.#attempt) context.abort(reason);
    else this.#more().abortReason ??= { reason };
  }

  // ---- settling ------------------------------------------------------------------------------

  #settleFailure(error: unknown): void {
    this.#settle(false, error, error instanceof CancelledError ? 'cancelled' : 'error');
  }

  #settle(ok: boolean, value: unknown, event: 'done' | 'error' | 'cancelled'): void {
    const core = this.#core;
    const wasRunning = this.#attempt > 0;
    this.#state = SETTLED;
    if (this.#counted === ACTIVE) core.active -= 1;
    else if (this.#counted === PENDING) core.pending -= 1;
    this.#counted = NOWHERE;
    const signal = this.#policy.signal;
    if (signal !== undefined) unwatch(signal, this);
    const events = core.events;
    events.counters[event] += 1;
    const rare = this.#rare;
    if (rare !== undefined) {
      this.#clearTimer(rare);
      if (rare.tokenWait !== undefined) {
        rare.tokenWait.cancel(value);
        rare.tokenWait = undefined;
      }
      if (event === 'cancelled') rare.controller?.abort(value);
      // A retry loop waiting on an attempt that will never run ends too (it sees the task settled).
      if (!ok) rare.attemptReject?.(value);
    }
    if (event === 'cancelled' && wasRunning) this.#abortAttempt(value);
    // Unlink from the live list.
    const prev = this.#prev;
    const next = this.#next;
    if (prev === undefined) core.liveHead = next;
    else prev.#next = next;
    if (next !== undefined) next.#prev = prev;
    this.#prev = undefined;
    this.#next = undefined;
    core.liveCount -= 1;
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
    events.releaseExecution(this);
    const release = this.#release;
    if (release !== undefined) {
      this.#release = undefined;
      release();
    }
    if (this.#sink !== undefined) this.#sink.settled(this, ok, value);
    else if (ok) this.#resolve?.(value);
    else {
      // A cancelled task nobody awaits must not crash the process as an unhandled rejection:
      // cancelling is the caller's own decision. Errors of the work itself are left alone.
      if (event === 'cancelled') this.#task?.catch(noop);
      this.#reject?.(value);
    }
    if (core.liveCount === 0) core.drained();
  }

  #clearTimer(rare: Rare): void {
    if (rare.timer !== undefined) {
      rare.timer.clear();
      rare.timer = undefined;
    }
  }

  #more(): Rare {
    return (this.#rare ??= {
      controller: undefined,
      tokenWait: undefined,
      timer: undefined,
      abortReason: undefined,
      retrying: false,
      sleeping: false,
      attemptResolve: undefined,
      attemptReject: undefined,
      channelContext: undefined,
    });
  }

  #signal(): AbortSignal {
    const rare = this.#more();
    return (rare.controller ??= new AbortController()).signal;
  }

  #payload(event: EventName): TaskPayload {
    const payload: TaskPayload = {
      event,
      method: this.#method,
      task: this.seq,
      executionId: this.id,
    };
    const name = this.#functionName();
    if (name !== undefined) payload.function = name;
    return payload;
  }

  /** The function's name (`'<anonymous>'` when it has none; undefined for a promise). */
  #functionName(): string | undefined {
    if (this.#kind === Kind.PROMISE) return undefined;
    return (this.#work as AnyFunction).name || '<anonymous>';
  }
}
