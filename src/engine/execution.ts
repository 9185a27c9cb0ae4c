import type { ClearablePromise } from 'p-timeout';
import { CancelledError, ShutdownError, type TimeoutError } from '../errors.js';
import { runInScope } from '../context.js';
import type { AnyFunction, EventSource, MethodName } from '../events/types.js';
import { isThenable } from '../internal/util.js';
import type { ResolvedPolicy } from '../options.js';
import type { GateJob } from '../policies/gate.js';
import type { KeyJob } from '../queue/keys.js';
import type { Parked } from '../queue/pause.js';
import type { CircuitControl } from '../resilience/circuit-view.js';
import { Settling } from './settling.js';
import { announceAttempt, announceRetry, type Announced } from './announce.js';
import { call, callOne, invoke, Kind, timed, type AttemptOwner } from './attempt.js';
import type { Core, Member, Sink } from './core.js';
import { armHedge, measureAttempt, type HedgeOwner } from './hedge.js';
import { Phase } from './phase.js';
import { RetryLoop, type RetryOwner } from './retry.js';
import type { TaskOwner } from './task-promise.js';

/**
 * One execution of one task, as a small state machine rather than an async function, so that
 * `cancel()` can settle it at once whatever the attempt is doing, and so that a task that
 * succeeds at once allocates no retry loop, no timer, no limiter wait, no AbortController and no
 * context object. Its life: {@link Phase}; what it is: {@link TaskRecord}; its way to each
 * attempt (key, gate, tokens): {@link Admission}; its endings: {@link Settling}; here, the
 * attempts, their retries and hedges.
 */
export class Execution
  extends Settling
  implements
    GateJob,
    KeyJob,
    Parked,
    EventSource,
    AttemptOwner,
    TaskOwner,
    RetryOwner,
    Member,
    Announced,
    HedgeOwner
{
  // Written out: the implicit constructor of a subclass passes its arguments on as a spread, an
  // array per task on Node 20.
  constructor(
    core: Core,
    policy: ResolvedPolicy,
    method: MethodName,
    kind: Kind,
    work: unknown,
    input: unknown,
    sink: Sink | undefined,
    key: string | undefined,
  ) {
    super(core, policy, method, kind, work, input, sink, key);
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
    this.abortAttempt(error);
  }

  // ---- attempts ------------------------------------------------------------------------------

  protected launch(attempt: number, waited: number): void {
    // Every caller has checked that the task is in Phase.TOKEN. Nor can the instance be stopping:
    // stop() cancels every task that is not running in one pass, and a place that frees passes on
    // a microtask later at the earliest (a gate lane's slot, a key's slot through the gate).
    const core = this.core;
    const events = core.events;
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
    // A ticket held already: admitted by a shared circuit's store (see admitLater).
    if (circuit !== undefined && this.ticket < 0) {
      const ticket = circuit.admit();
      if (isThenable(ticket)) {
        this.admitLater(circuit, ticket, attempt);
        return;
      }
      // Its turning half-open is announced: a listener may have ended the task.
      if (this.phase !== Phase.TOKEN) {
        if (typeof ticket === 'number') circuit.abandon(ticket);
        return;
      }
      if (typeof ticket !== 'number') {
        this.refusedAtStart(ticket);
        return;
      }
      this.ticket = ticket;
    }
    core.accounting.activate(this);
    this.phase = Phase.RUNNING;
    this.attempt = attempt;
    core.accounting.started();
    // Always timed: a listener added while the task runs still gets its elapsed.
    this.startedAt ??= performance.now();
    // Each attempt's own start: its latency is a sample (hedging by percentile, adaptive limit).
    if (core.latency !== undefined || core.adaptive !== undefined)
      this.attemptAt = performance.now();
    if (events.wants('started', this)) announceAttempt(events, this, 'started', attempt, 0);
    // A listener may have cancelled the task: then nothing runs. (One that shut the instance down
    // without waiting aborted the attempt's signal: the work runs with it aborted, as any running
    // task's.)
    if (this.phase !== Phase.RUNNING) return;
    let out: unknown;
    try {
      // In the caller's async context: an AsyncLocalStorage store set around schedule() (a request
      // id, say) is there in the task, however long it waited and whichever task ran before. With
      // its span open on `dovetail:task`, the stores bound to the channel are entered there too.
      out = (this.holdings?.channelScope ?? this.scope).runInAsyncScope(invokeWork, this);
    } catch (error) {
      this.fail(attempt, error);
      return;
    }
    const timeout = this.policy.timeout;
    const promise = isThenable(out) ? timed(out, timeout, this) : undefined;
    if (promise === undefined) {
      this.succeed(attempt, out);
      return;
    }
    if (timeout !== Infinity) this.hold().timer = promise as ClearablePromise<unknown>;
    const hedge = this.policy.hedge;
    if (hedge !== undefined) this.hold().hedge = armHedge(this, attempt, hedge);
    promise.then(
      (value) => this.succeed(attempt, value),
      (error: unknown) => this.fail(attempt, error),
    );
  }

  private succeed(attempt: number, value: unknown): void {
    if (this.phase !== Phase.RUNNING || attempt !== this.attempt) return;
    // A hedge won already: this copy lost.
    if (this.holdings?.hedge?.firstSucceeded() === false) return;
    const adaptive = this.core.adaptive;
    if (adaptive !== undefined) {
      adaptive.ended(this.attemptAt, true, undefined);
      // A `limit_changed` listener may have ended the task.
      if (this.phase !== Phase.RUNNING) return;
    }
    if (this.ticket >= 0 && !this.recordOutcome(true, value)) return;
    if (this.core.latency !== undefined) measureAttempt(this);
    this.won(value);
  }

  private won(value: unknown): void {
    const holdings = this.holdings;
    if (holdings === undefined) {
      this.settle(true, value, 'done');
      return;
    }
    this.clearTimer(holdings);
    if (holdings.loop !== undefined) holdings.loop.succeeded(value);
    else this.settle(true, value, 'done');
  }

  private fail(attempt: number, error: unknown): void {
    if (this.phase !== Phase.RUNNING || attempt !== this.attempt) return;
    const hedge = this.holdings?.hedge;
    if (hedge?.decided === true) return;
    const adaptive = this.core.adaptive;
    if (adaptive !== undefined) {
      adaptive.ended(this.attemptAt, false, error);
      // Its `isOverload` and the `limit_changed` listeners may have ended the task.
      if (this.phase !== Phase.RUNNING) return;
    }
    if (this.ticket >= 0 && !this.recordOutcome(false, error)) return;
    // Hedges still in flight decide the attempt.
    if (hedge?.firstFailed() === true) return;
    this.failed(error);
  }

  private failed(error: unknown): void {
    const holdings = this.holdings;
    if (holdings !== undefined) {
      this.clearTimer(holdings);
      if (holdings.loop !== undefined) {
        holdings.loop.failed(error);
        return;
      }
    }
    const policy = this.policy;
    if (policy.retries === 0 || this.kind === Kind.PROMISE) {
      this.settleFailure(error);
      return;
    }
    this.hold().loop = new RetryLoop(this, error, policy.retries, policy, this.signal());
  }

  /**
   * Tells the circuit how the attempt ended. `false` when the task is over: its `isFailure`
   * threw (the task then fails with that error), or user code the circuit ran (`isFailure`, a
   * listener of its state) ended the task.
   */
  private recordOutcome(ok: boolean, value: unknown): boolean {
    const ticket = this.ticket;
    this.ticket = -1;
    return this.recordCopy(ticket, ok, value);
  }

  /** @internal Part of {@link HedgeOwner}; also the first copy's report. */
  recordCopy(ticket: number, ok: boolean, value: unknown): boolean {
    if (ticket < 0) return true;
    try {
      (this.core.circuit as CircuitControl).record(ticket, ok, value);
    } catch (thrown) {
      if (this.phase !== Phase.SETTLED) this.settle(false, thrown, 'error');
      return false;
    }
    return this.phase !== Phase.SETTLED;
  }

  /** @internal Part of {@link HedgeOwner}: the first copy lost, and is aborted. */
  hedgeWon(attempt: number, value: unknown): void {
    if (this.ticket >= 0) {
      // A ticket is only ever taken from the instance's circuit.
      (this.core.circuit as CircuitControl).abandon(this.ticket);
      this.ticket = -1;
    }
    // Measured until now: its latency was at least that.
    measureAttempt(this);
    this.abortAttempt(new CancelledError(`a hedge of attempt ${attempt} succeeded first`));
    this.won(value);
  }

  /** @internal Part of {@link HedgeOwner}. */
  hedgesFailed(error: unknown): void {
    this.failed(error);
  }

  /** @internal Part of {@link RetryOwner}. */
  loopEnded(ok: boolean, value: unknown): void {
    if (this.phase === Phase.SETTLED) return;
    if (ok) this.settle(true, value, 'done');
    else this.settleFailure(value);
  }

  /** @internal Part of {@link RetryOwner}. */
  shouldRetry(error: unknown, attempt: number): boolean {
    if (this.phase !== Phase.RUNNING || this.core.stopping) return false;
    if (error instanceof CancelledError || error instanceof ShutdownError) return false;
    const decide = this.policy.shouldRetry;
    if (decide === undefined) return true;
    // User code: it may have cancelled the task or shut the instance down.
    return decide(error, attempt) && this.phase === Phase.RUNNING && !this.core.stopping;
  }

  /** @internal Part of {@link RetryOwner}. */
  retrying(error: unknown, attempt: number, sleep: number): boolean {
    // `retryDelay`, user code, may have cancelled the task or shut the instance down.
    if (this.phase !== Phase.RUNNING || this.core.stopping) return false;
    this.phase = Phase.SLEEPING;
    this.core.accounting.retried();
    const events = this.core.events;
    if (events.wants('retry', this)) announceRetry(events, this, attempt, sleep, error);
    return true;
  }
}

/** Calls an execution's work (`this`: the execution), in the scope its attempt runs in. */
function invokeWork(this: Execution): unknown {
  const kind = this.kind;
  // The common kinds without the dispatch.
  if (kind === Kind.CALL_ONE)
    return runInScope(this, callOne, this.work as AnyFunction, this.input);
  if (kind === Kind.CALL)
    return runInScope(this, call, this.work as AnyFunction, this.input as readonly unknown[]);
  return invoke(this, kind, this.work, this.input, this.attempt);
}
