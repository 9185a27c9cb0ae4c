import type { ClearablePromise } from 'p-timeout';
import {
  CancelledError,
  QueueFullError,
  ShutdownError,
  type CircuitOpenError,
  type TimeoutError,
} from '../errors.js';
import { runInContext } from '../context.js';
import type { AnyFunction, EventSource, MethodName } from '../events/types.js';
import { isThenable } from '../internal/util.js';
import type { ResolvedPolicy } from '../options.js';
import type { GateJob, LocalGate } from '../policies/gate.js';
import type { KeyJob } from '../queue/keys.js';
import type { Parked } from '../queue/pause.js';
import type { CircuitControl } from '../resilience/circuit.js';
import { TokenBucket, type TokenWait } from '../policies/rate-limit.js';
import { Counted, type Outcome } from './accounting.js';
import { announceAttempt, announceEnd, announceRetry, type Announced } from './announce.js';
import { call, invoke, Kind, timed, type AttemptOwner } from './attempt.js';
import { runSoon, type Core, type Member, type Sink } from './core.js';
import { Phase, type Holdings } from './phase.js';
import { TaskRecord } from './record.js';
import { refuseSoon } from './refused.js';
import { RetryLoop, type RetryOwner } from './retry.js';
import { unwatch, watch } from './signals.js';
import type { TaskOwner } from './task-promise.js';

/**
 * One execution of one task, as a small state machine rather than an async function, so that
 * `cancel()` can settle it at once whatever the attempt is doing, and so that a task that
 * succeeds at once allocates no retry loop, no timer, no limiter wait, no AbortController and no
 * context object. Its life: {@link Phase}; what it is: {@link TaskRecord}.
 */
export class Execution
  extends TaskRecord
  implements
    GateJob,
    KeyJob,
    Parked,
    EventSource,
    AttemptOwner,
    TaskOwner,
    RetryOwner,
    Member,
    Announced
{
  // Written out: the implicit constructor of a subclass passes its arguments on as a spread, an
  // array per task on Node 20.
  constructor(
    core: Core,
    policy: ResolvedPolicy,
    method: MethodName,
    kind: Kind,
    work: unknown,
    args: readonly unknown[],
    sink: Sink | undefined,
    key: string | undefined,
  ) {
    super(core, policy, method, kind, work, args, sink, key);
  }

  isCurrent(attempt: number): boolean {
    return this.phase !== Phase.SETTLED && this.attempt === attempt;
  }

  refuses(): boolean {
    if (!this.core.stopping) return false;
    // Shut down without waiting before the body ran: it never runs.
    this.cancel(new ShutdownError('instance shut down before toThread() ran'));
    return true;
  }

  timedOut(error: TimeoutError): void {
    this.#abortAttempt(error);
  }

  /** Enters the instance: counts, announces, and queues for its key and the gate. */
  start(): void {
    const core = this.core;
    core.accounting.enter(this);
    const events = core.events;
    if (events.wants('queued', this)) events.publish(this.payload('queued'), this);
    const signal = this.policy.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.cancel(signal.reason);
        return;
      }
      watch(signal, this);
    }
    // An open circuit fails the task at once: no slot, no token, no call.
    const refused = core.circuit?.refusal();
    if (refused !== undefined) {
      // A microtask later, with the tasks refused alongside: by then the caller holds the task
      // and has attached its handlers, so its rejection is not tracked as unhandled first (on
      // 100 000 refused tasks that tracking was an eighth of the time).
      refuseSoon(this, refused);
      return;
    }
    // A timed pause keeps the process alive while a task waits on it.
    if (core.pause.active) core.pause.hold(true);
    const key = this.key;
    if (key !== undefined && core.keys !== undefined) core.keys.enter(key, this);
    else this.#toGate();
    if (core.accounting.pending > core.maxQueue) shed(this);
  }

  #toGate(): void {
    const core = this.core;
    if (core.gate !== undefined) core.gate.run(this);
    else {
      this.admitted();
      runSoon(this);
    }
  }

  /** @internal Part of {@link KeyJob}: still waiting for its key. */
  get waiting(): boolean {
    return this.phase === Phase.QUEUED;
  }

  /** @internal Part of {@link KeyJob}: counted as waiting. */
  get pending(): boolean {
    return this.counted === Counted.PENDING;
  }

  /** @internal Part of {@link KeyJob}. */
  holdWait(wait: TokenWait | undefined): void {
    if (wait !== undefined || this.holdings !== undefined) this.hold().tokenWait = wait;
  }

  /** @internal Part of {@link KeyJob}: through its key, on to the instance's limits. */
  keyPassed(waited: number): void {
    if (this.phase !== Phase.QUEUED || !this.keyHeld) return;
    this.keyWaited = waited;
    this.#toGate();
  }

  /** @internal Part of {@link KeyJob}: back to waiting for its key. */
  keyRevoked(): void {
    const holdings = this.holdings;
    const wait = holdings?.tokenWait;
    if (holdings !== undefined && wait !== undefined) {
      holdings.tokenWait = undefined;
      wait.cancel();
    }
    // Its entry at the gate, if it has one, is given up when its turn comes (see run()).
    this.core.accounting.deactivate(this);
  }

  /**
   * The gate reserved a slot: from now on the task counts as active, unless it still has to
   * wait for its first rate-limit token or a pause.
   */
  admitted(): void {
    const core = this.core;
    // Told again by the lane that takes it (see GateJob.admitted): the first time counted.
    if (this.counted !== Counted.PENDING || core.pause.active) return;
    const limiter = core.limiter;
    if (limiter === undefined) core.accounting.activate(this);
    else if (
      limiter instanceof TokenBucket &&
      limiter.available(this.policy.cost, this.policy.priority) &&
      limiter.take(this.policy.cost, this.policy.priority, this.seq) === 0
    ) {
      // A token is free too: it is the first attempt's, and the task starts at once.
      this.tokenTaken = true;
      core.accounting.activate(this);
    }
  }

  /**
   * Called by the gate once a slot is free (and once the task is due, with no gate). The slot is
   * held until the execution settles, so a cancelled task frees its slot at once.
   */
  run(release: (() => void) | undefined): void {
    if (this.phase !== Phase.QUEUED) {
      // Cancelled while it waited for the slot.
      release?.();
      return;
    }
    const key = this.key;
    const keys = this.core.keys;
    if (key !== undefined && keys !== undefined) {
      if (!this.keyHeld) {
        // Its key's slot went to a task of a higher priority meanwhile: it waits for its key
        // again, and this gate slot passes on.
        this.core.accounting.deactivate(this);
        release?.();
        return;
      }
      keys.started(key, this);
    }
    // With no gate, a slot adopted from a gate made meanwhile (see adopt()) stays held.
    if (release !== undefined) this.releaseSlot = release;
    this.#attemptNext(1);
  }

  /** Called by a gate that cannot grant a slot (a shared back end that failed). */
  reject(error: unknown): void {
    if (this.phase === Phase.SETTLED) return;
    this.#settle(false, error, 'error');
  }

  /** Cancels the execution at once. @returns `false` when it had already settled. */
  cancel(reason?: unknown): boolean {
    if (this.phase === Phase.SETTLED) return false;
    const error =
      reason === undefined
        ? new CancelledError()
        : new CancelledError(undefined, { cause: reason });
    this.#settle(false, error, 'cancelled');
    return true;
  }

  /** @internal Part of {@link Member}. */
  adopt(gate: LocalGate): void {
    if (this.releaseSlot === undefined) this.releaseSlot = gate.adopt();
  }

  /** Fails the task, which still waits, with `error`: a full queue shed it. */
  shed(error: QueueFullError): void {
    if (this.phase === Phase.SETTLED) return;
    this.core.accounting.counters.shed += 1;
    this.#settle(false, error, 'error');
  }

  /**
   * `shutdown({ wait: false })`: cancel what has not started, cancel what sleeps between
   * retries, abort the signal of what runs.
   */
  stop(reason: ShutdownError): void {
    if (this.phase === Phase.SETTLED) return;
    if (this.attempt === 0 || this.phase === Phase.SLEEPING) this.cancel(reason);
    else this.#abortAttempt(reason);
  }

  // ---- attempts ------------------------------------------------------------------------------

  #attemptNext(attempt: number): void {
    this.phase = Phase.TOKEN;
    // A retry (or a task that waited for its slot) meets an open circuit before its token.
    const refused = this.core.circuit?.refusal();
    if (refused !== undefined) {
      this.#shortCircuit(refused);
      return;
    }
    // The first attempt took its key's token before the gate; a retry takes one here.
    const key = this.key;
    const bucket = attempt > 1 && key !== undefined ? this.core.keys?.bucketOf(key) : undefined;
    if (bucket === undefined) {
      this.#instanceToken(attempt, attempt === 1 ? this.keyWaited : 0);
      return;
    }
    this.#await(bucket.take(this.policy.cost, this.policy.priority, this.seq), (ms) =>
      this.#instanceToken(attempt, ms),
    );
  }

  #instanceToken(attempt: number, keyWaited: number): void {
    const limiter = this.core.limiter;
    if (limiter === undefined || this.tokenTaken) {
      this.tokenTaken = false;
      this.#launch(attempt, keyWaited);
      return;
    }
    let waited: number | Promise<number>;
    try {
      // The in-process bucket hands back a wait that can be called off directly: no
      // AbortController per task.
      waited =
        limiter instanceof TokenBucket
          ? limiter.take(this.policy.cost, this.policy.priority, this.seq)
          : limiter.acquire(this.signal(), this.policy.cost);
    } catch (error) {
      // The limiter could not give a token (a shared back end failed): the task fails with that
      // error, unretried.
      this.#settleFailure(error);
      return;
    }
    this.#await(waited, (ms) => this.#launch(attempt, keyWaited + ms));
  }

  /** Goes on with `then(ms)` once a token wait is over (at once for a free token). */
  #await(waited: number | Promise<number>, then: (ms: number) => void): void {
    if (typeof waited === 'number') {
      then(waited);
      return;
    }
    if (typeof (waited as Partial<TokenWait>).cancel === 'function')
      this.hold().tokenWait = waited as TokenWait;
    waited.then(
      (ms) => {
        const holdings = this.holdings;
        if (holdings !== undefined) holdings.tokenWait = undefined;
        if (this.phase === Phase.TOKEN) then(ms);
      },
      (error: unknown) => {
        // Aborted because the task settled: nothing to do. Anything else is a back-end failure.
        if (this.phase !== Phase.SETTLED) this.#settleFailure(error);
      },
    );
  }

  #launch(attempt: number, waited: number): void {
    if (this.phase !== Phase.TOKEN) return;
    const core = this.core;
    const events = core.events;
    if (core.stopping) {
      this.cancel(new ShutdownError('instance is shutting down'));
      return;
    }
    if (waited > 0) {
      core.accounting.throttled();
      if (events.wants('rate_limited', this))
        announceAttempt(events, this, 'rate_limited', attempt, waited);
      if (this.phase !== Phase.TOKEN) return;
    }
    if (core.pause.active) {
      // Paused: the attempt waits for the pause to end (its token is taken).
      core.pause.park(this);
      return;
    }
    const circuit = core.circuit;
    // A ticket held already: admitted by a shared circuit's store (see #admitLater).
    if (circuit !== undefined && this.ticket < 0) {
      const ticket = circuit.admit();
      if (isThenable(ticket)) {
        this.#admitLater(ticket, attempt);
        return;
      }
      if (typeof ticket !== 'number') {
        this.#refusedAtStart(ticket);
        return;
      }
      this.ticket = ticket;
    }
    core.accounting.activate(this);
    this.phase = Phase.RUNNING;
    this.attempt = attempt;
    core.accounting.started();
    // Always timed: a listener added while the task runs still gets its elapsed.
    if (this.startedAt < 0) this.startedAt = performance.now();
    if (events.wants('started', this)) announceAttempt(events, this, 'started', attempt, 0);
    // A listener may have cancelled the task (or shut the instance down): then nothing runs.
    if (this.phase !== Phase.RUNNING) return;
    let out: unknown;
    try {
      // In the caller's async context: an AsyncLocalStorage store set around schedule() (a request
      // id, say) is there in the task, however long it waited and whichever task ran before.
      out = this.scope.runInAsyncScope(this.#invoke, this);
    } catch (error) {
      this.#fail(attempt, error);
      return;
    }
    const timeout = this.policy.timeout;
    const promise = isThenable(out) ? timed(out, timeout, this) : undefined;
    if (promise === undefined) {
      this.#succeed(attempt, out);
      return;
    }
    if (timeout !== Infinity) this.hold().timer = promise as ClearablePromise<unknown>;
    promise.then(
      (value) => this.#succeed(attempt, value),
      (error: unknown) => this.#fail(attempt, error),
    );
  }

  #refusedAtStart(error: CircuitOpenError): void {
    // The circuit opened while the attempt waited for its token: the token goes back.
    const limiter = this.core.limiter;
    if (limiter instanceof TokenBucket) limiter.refund(this.policy.cost);
    this.#shortCircuit(error);
  }

  /** A shared circuit asks its store whether the attempt may start (a half-open trial). */
  #admitLater(pending: Promise<number | CircuitOpenError>, attempt: number): void {
    pending.then(
      (ticket) => {
        if (typeof ticket === 'number') {
          if (this.phase !== Phase.TOKEN) this.core.circuit?.abandon(ticket);
          else {
            this.ticket = ticket;
            this.#launch(attempt, 0);
          }
        } else if (this.phase === Phase.TOKEN) this.#refusedAtStart(ticket);
      },
      (error: unknown) => {
        if (this.phase === Phase.TOKEN) this.#settleFailure(error);
      },
    );
  }

  /** @internal Part of {@link Parked}: the pause ended. */
  unpark(): void {
    if (this.phase === Phase.TOKEN) this.#launch(this.attempt + 1, 0);
  }

  #invoke(): unknown {
    const kind = this.kind;
    // The common kind without the dispatch.
    if (kind === Kind.CALL) return runInContext(this, call, this.work as AnyFunction, this.args);
    return invoke(this, kind, this.work, this.args, this.attempt);
  }

  #succeed(attempt: number, value: unknown): void {
    if (this.phase !== Phase.RUNNING || attempt !== this.attempt) return;
    if (this.ticket >= 0 && !this.#record(true, value)) return;
    const holdings = this.holdings;
    if (holdings === undefined) {
      this.#settle(true, value, 'done');
      return;
    }
    this.#clearTimer(holdings);
    if (holdings.loop !== undefined) holdings.loop.succeeded(value);
    else this.#settle(true, value, 'done');
  }

  #fail(attempt: number, error: unknown): void {
    if (this.phase !== Phase.RUNNING || attempt !== this.attempt) return;
    if (this.ticket >= 0 && !this.#record(false, error)) return;
    const holdings = this.holdings;
    if (holdings !== undefined) {
      this.#clearTimer(holdings);
      if (holdings.loop !== undefined) {
        holdings.loop.failed(error);
        return;
      }
    }
    const policy = this.policy;
    if (policy.retries === 0 || this.kind === Kind.PROMISE) {
      this.#settleFailure(error);
      return;
    }
    this.hold().loop = new RetryLoop(this, error, policy.retries, policy, this.signal());
  }

  /**
   * Tells the circuit how the attempt ended. `false` when its `isFailure` threw: the task then
   * fails with that error.
   */
  #record(ok: boolean, value: unknown): boolean {
    const ticket = this.ticket;
    this.ticket = -1;
    try {
      (this.core.circuit as CircuitControl).record(ticket, ok, value);
      return true;
    } catch (thrown) {
      this.#settle(false, thrown, 'error');
      return false;
    }
  }

  /** An open circuit fails the task with `error`, whatever retries remain. @internal */
  refuse(error: CircuitOpenError): void {
    if (this.phase === Phase.SETTLED) return;
    this.#shortCircuit(error);
  }

  #shortCircuit(error: CircuitOpenError): void {
    this.core.accounting.counters.shortCircuited += 1;
    this.#settle(false, error, 'error');
  }

  /** @internal Part of {@link RetryOwner}. */
  attemptNext(attempt: number): void {
    this.#attemptNext(attempt);
  }

  /** @internal Part of {@link RetryOwner}. */
  loopEnded(ok: boolean, value: unknown): void {
    if (this.phase === Phase.SETTLED) return;
    if (ok) this.#settle(true, value, 'done');
    else this.#settleFailure(value);
  }

  /** @internal Part of {@link RetryOwner}. */
  shouldRetry(error: unknown, attempt: number): boolean {
    if (this.phase !== Phase.RUNNING || this.core.stopping) return false;
    if (error instanceof CancelledError || error instanceof ShutdownError) return false;
    const decide = this.policy.shouldRetry;
    return decide === undefined || decide(error, attempt);
  }

  /** @internal Part of {@link RetryOwner}. */
  retrying(error: unknown, attempt: number, sleep: number): void {
    this.phase = Phase.SLEEPING;
    this.core.accounting.retried();
    const events = this.core.events;
    if (events.wants('retry', this)) announceRetry(events, this, attempt, sleep, error);
  }

  #abortAttempt(reason: unknown): void {
    this.context().abort(reason);
  }

  // ---- settling ------------------------------------------------------------------------------

  #settleFailure(error: unknown): void {
    this.#settle(false, error, error instanceof CancelledError ? 'cancelled' : 'error');
  }

  #settle(ok: boolean, value: unknown, event: Outcome): void {
    const core = this.core;
    const wasRunning = this.attempt > 0;
    this.phase = Phase.SETTLED;
    core.accounting.leave(this, event);
    const signal = this.policy.signal;
    if (signal !== undefined) unwatch(signal, this);
    const holdings = this.holdings;
    if (holdings !== undefined) {
      this.#clearTimer(holdings);
      if (holdings.tokenWait !== undefined) {
        holdings.tokenWait.cancel(value);
        holdings.tokenWait = undefined;
      }
      if (event === 'cancelled') holdings.controller?.abort(value);
      // A retry loop waiting on an attempt that will never run ends too (it sees the task settled).
      if (!ok) holdings.loop?.end(value);
    }
    if (event === 'cancelled' && wasRunning) this.#abortAttempt(value);
    const events = core.events;
    if (events.wants(event, this))
      announceEnd(events, this, event, value, this.attempt, this.startedAt);
    events.releaseExecution(this);
    const release = this.releaseSlot;
    if (release !== undefined) {
      this.releaseSlot = undefined;
      release();
    }
    if (this.tokenTaken) {
      // Settled before its first attempt: the token it took goes back.
      this.tokenTaken = false;
      if (core.limiter instanceof TokenBucket) core.limiter.refund(this.policy.cost);
    }
    if (this.ticket >= 0) {
      // Its attempt will never report: a trial gives its place back.
      core.circuit?.abandon(this.ticket);
      this.ticket = -1;
    }
    const key = this.key;
    if (key !== undefined && core.keys !== undefined) {
      if (this.keyHeld) core.keys.leave(key, this);
      else core.keys.gone(key, this);
    }
    this.deliver(ok, value, event === 'cancelled');
    core.accounting.afterSettle();
  }

  #clearTimer(holdings: Holdings): void {
    if (holdings.timer !== undefined) {
      holdings.timer.clear();
      holdings.timer = undefined;
    }
  }
}

/**
 * `arrived` made the queue longer than `maxQueue`: with `'reject'` it fails; with `'drop-oldest'`
 * the oldest waiting task of the lowest priority fails instead, unless its priority is higher.
 */
function shed(arrived: Execution): void {
  const core = arrived.core;
  let victim: Member = arrived;
  if (core.queueOverflow === 'drop-oldest') {
    const oldest = core.accounting.oldestLowest(arrived);
    if (oldest !== undefined && oldest.priority <= arrived.priority) victim = oldest;
  }
  if (victim.counted === Counted.PENDING)
    victim.shed(new QueueFullError(undefined, { maxQueue: core.maxQueue }));
}
