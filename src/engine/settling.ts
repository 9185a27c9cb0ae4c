import { CancelledError, type ShutdownError } from '../errors.js';
import type { MethodName } from '../events/types.js';
import type { ResolvedPolicy } from '../options.js';
import type { TokenBucket } from '../policies/rate-limit.js';
import type { Outcome } from './accounting.js';
import { Admission } from './admission.js';
import { announceEnd } from './announce.js';
import type { Kind } from './attempt.js';
import type { Core, Sink } from './core.js';
import { Phase, type Holdings } from './phase.js';
import { unwatch } from './signals.js';

/**
 * The ways an execution ends, which {@link Execution} extends: a gate's refusal, `cancel()`,
 * `shutdown({ wait: false })`, and `settle`, through which every ending goes.
 */
export abstract class Settling extends Admission {
  // Written out, as in Execution: an implicit constructor would pass its arguments on as a
  // spread, an array per task on Node 20.
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

  /** Called by a gate that cannot grant a slot (a shared back end that failed). */
  reject(error: unknown): void {
    if (this.phase === Phase.SETTLED) return;
    this.settle(false, error, 'error');
  }

  /** Cancels the execution at once. @returns `false` when it had already settled. */
  cancel(reason?: unknown): boolean {
    if (this.phase === Phase.SETTLED) return false;
    const error =
      reason === undefined
        ? new CancelledError()
        : new CancelledError(undefined, { cause: reason });
    this.settle(false, error, 'cancelled');
    return true;
  }

  /**
   * `shutdown({ wait: false })`: abort the signal of what runs; cancel everything else, what has
   * not started and what is between attempts (asleep before a retry, or waiting for the retry's
   * token), at once.
   */
  stop(reason: ShutdownError): void {
    if (this.phase !== Phase.RUNNING) this.cancel(reason);
    else {
      this.abortAttempt(reason);
      this.holdings?.hedge?.stop(reason);
    }
  }

  /** Aborts the signal of the attempt now running. */
  protected abortAttempt(reason: unknown): void {
    this.context().abort(reason);
  }

  // ---- settling ------------------------------------------------------------------------------

  /** Settles with `error`, as cancelled when it is a `CancelledError`. */
  protected settleFailure(error: unknown): void {
    this.settle(false, error, error instanceof CancelledError ? 'cancelled' : 'error');
  }

  /**
   * The one way out: counts, lets go of everything held (signal watch, timer, hedges, token wait,
   * controller, retry loop, gate slot, unused token, circuit ticket, key), announces the outcome
   * and delivers it.
   */
  protected settle(ok: boolean, value: unknown, event: Outcome): void {
    const core = this.core;
    const wasRunning = this.attempt > 0;
    this.phase = Phase.SETTLED;
    core.accounting.leave(this, event);
    const signal = this.policy.signal;
    if (signal !== undefined) unwatch(signal, this);
    const holdings = this.holdings;
    if (holdings !== undefined) {
      this.clearTimer(holdings);
      holdings.hedge?.finish(value);
      if (holdings.tokenWait !== undefined) {
        holdings.tokenWait.cancel(value);
        holdings.tokenWait = undefined;
      }
      if (event === 'cancelled') holdings.controller?.abort(value);
      // A retry loop waiting on an attempt that will never run ends too (it sees the task settled).
      if (!ok) holdings.loop?.end(value);
    }
    if (event === 'cancelled' && wasRunning) this.abortAttempt(value);
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
      // Only the in-process bucket gives a token at admission (see Admission.admitted()).
      (core.limiter as TokenBucket).refund(this.policy.cost);
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

  protected clearTimer(holdings: Holdings): void {
    if (holdings.timer !== undefined) {
      holdings.timer.clear();
      holdings.timer = undefined;
    }
  }
}
