import type { ClearablePromise } from 'p-timeout';
import type { AsyncResource } from 'node:async_hooks';
import { CancelledError, type TimeoutError } from '../errors.js';
import { isThenable } from '../internal/util.js';
import { HEDGE_DEFAULTS, type ResolvedHedge } from '../latency/hedge-options.js';
import { LatencyWindow } from '../latency/quantile.js';
import type { ResolvedPolicy } from '../options.js';
import { TokenBucket } from '../policies/rate-limit.js';
import { functionName, type Announced } from './announce.js';
import { AttemptContext, invoke, Kind, timed, type AttemptOwner } from './attempt.js';
import type { Core } from './core.js';

/** What hedging asks of the execution whose attempt it copies. */
export interface HedgeOwner extends Announced {
  readonly core: Core;
  readonly policy: ResolvedPolicy;
  readonly kind: Kind;
  readonly work: unknown;
  readonly input: unknown;
  readonly scope: AsyncResource;
  readonly id: string;
  readonly seq: number;
  readonly key: string | undefined;
  /** `performance.now()` when the attempt now running started, while latency is measured. */
  attemptAt: number | undefined;
  /** Whether `attempt` is still the attempt to run. */
  isCurrent(attempt: number): boolean;
  /** Whether the instance stops: a deferred body must not run (see {@link AttemptOwner}). */
  refuses(): boolean;
  /**
   * Reports a copy's outcome to the circuit with its ticket; `false` when the task is over: the
   * breaker's `isFailure` threw (the owner then fails the task with that error), or user code
   * the circuit ran ended it.
   */
  recordCopy(ticket: number, ok: boolean, value: unknown): boolean;
  /** A hedge of `attempt` succeeded first: the attempt succeeded with `value`. */
  hedgeWon(attempt: number, value: unknown): void;
  /**
   * Every copy of the running attempt failed, the first one included (or a shutdown aborted the
   * copies left): the attempt failed with `error`.
   */
  hedgesFailed(error: unknown): void;
}

/** The signal reason a losing copy sees. */
const lost = (attempt: number): CancelledError =>
  new CancelledError(`another copy of attempt ${attempt} succeeded first`);

/**
 * The hedges of one attempt (option `hedge`): up to `max` extra copies, one per `delay` ms, each
 * started only if a gate slot and a rate-limit token are free at that moment (taken at once, never
 * waited for), and only while the circuit is closed; a chance that finds none free sends nothing.
 * The first copy to succeed wins and the others are aborted; the attempt fails only once every
 * copy in flight failed, with the last copy's error.
 *
 * Outcomes: every copy takes a circuit ticket and reports its outcome as an attempt does; a copy
 * aborted because another won gives its ticket back (it tells nothing about the upstream). The
 * latency window is fed by the execution, one sample per attempt (see {@link measureAttempt}).
 */
export class Hedging {
  readonly #owner: HedgeOwner;
  readonly attempt: number;
  readonly #delay: number;
  /** Chances to send a hedge still to come. */
  #chances: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Hedges in flight. */
  readonly #copies = new Set<Copy>();
  /** The first copy (the execution's own) failed. */
  #firstFailed = false;
  /** The attempt is decided (a copy succeeded, or all failed) or over. */
  decided = false;

  constructor(owner: HedgeOwner, attempt: number, delay: number, max: number) {
    this.#owner = owner;
    this.attempt = attempt;
    this.#delay = delay;
    this.#chances = max;
    this.#arm();
  }

  #arm(): void {
    const timer = setTimeout(this.#chance, this.#delay);
    // Hedging never keeps the process alive: the attempt it copies does, if anything.
    timer.unref?.();
    this.#timer = timer;
  }

  readonly #chance = (): void => {
    this.#timer = undefined;
    if (this.decided || !this.#owner.isCurrent(this.attempt)) return;
    this.#chances -= 1;
    if (this.#chances > 0) this.#arm();
    this.#send();
  };

  /** Starts one hedge if a slot and a token are free now and the circuit is closed. */
  #send(): void {
    const owner = this.#owner;
    const core = owner.core;
    if (core.stopping || core.pause.active) return;
    const circuit = core.circuit;
    if (circuit !== undefined && circuit.state !== 'closed') return;
    const cost = owner.policy.cost;
    const priority = owner.policy.priority;
    const limiter = core.limiter;
    let bucket: TokenBucket | undefined;
    if (limiter !== undefined) {
      // A shared limiter cannot promise a token now without a round trip: no hedges.
      if (!(limiter instanceof TokenBucket) || !limiter.available(cost, priority)) return;
      bucket = limiter;
    }
    const gate = core.gate;
    let release: (() => void) | undefined;
    if (gate !== undefined) {
      release = gate.tryAcquire?.();
      if (release === undefined) return;
    }
    const key = owner.key;
    const keys = core.keys;
    if (key !== undefined && keys !== undefined) {
      // Its key's slot and token too, free now or no hedge (limits that cannot promise them
      // without waiting, such as a shared back end's, give keyed tasks no hedges).
      const keySlot = keys.tryTake?.(key, cost, priority, owner.seq);
      if (keySlot === undefined) {
        release?.();
        return;
      }
      const gateSlot = release;
      release = () => {
        keySlot();
        gateSlot?.();
      };
    }
    // Free a moment ago (available() said so): taken at once, never waited for.
    void bucket?.take(cost, priority, owner.seq);
    // The circuit was closed a moment ago, so it admits and gives a ticket.
    const ticket = circuit === undefined ? -1 : (circuit.admit() as number);
    const copy = new Copy(this, owner, release, ticket);
    this.#copies.add(copy);
    core.accounting.started();
    core.accounting.counters.hedged += 1;
    const events = core.events;
    if (events.wants('started', owner)) {
      const payload = owner.payload('started');
      payload.attempt = this.attempt;
      payload.hedge = true;
      events.publish(payload, owner);
      // A listener may have cancelled the task: then the copy is already aborted.
      if (copy.over) return;
    }
    copy.start();
  }

  /**
   * The first copy succeeded. `false` when the attempt was already decided (its outcome is
   * ignored); else the hedges in flight are aborted as losers.
   */
  firstSucceeded(): boolean {
    if (this.decided) return false;
    this.finish(lost(this.attempt));
    return true;
  }

  /**
   * The first copy failed. `true` when the attempt goes on (hedges still in flight decide it);
   * `false` when it fails now.
   */
  firstFailed(): boolean {
    if (this.#copies.size > 0) {
      this.#firstFailed = true;
      return true;
    }
    this.finish(undefined);
    return false;
  }

  /** A hedge ended on its own. */
  ended(copy: Copy, ok: boolean, value: unknown): void {
    this.#copies.delete(copy);
    if (this.decided) return;
    const owner = this.#owner;
    // `isFailure` and the circuit's listeners may have ended the task.
    if (!owner.recordCopy(copy.ticket, ok, value)) return;
    if (ok) {
      this.finish(lost(this.attempt));
      owner.hedgeWon(this.attempt, value);
    } else if (this.#firstFailed && this.#copies.size === 0) {
      this.finish(undefined);
      owner.hedgesFailed(value);
    }
  }

  /**
   * Ends the hedging of this attempt: no further hedge is sent, and every hedge in flight is
   * aborted with `reason` (its slot freed, its ticket given back). Called once the attempt is
   * decided, and when the task settles.
   */
  finish(reason: unknown): void {
    this.decided = true;
    this.#abort(reason);
  }

  /**
   * `shutdown({ wait: false })`: every hedge in flight is aborted with `reason`. An aborted hedge
   * no longer reports, so when the first copy has failed already nothing is left to decide the
   * attempt: it fails now, with `reason`. Else the first copy, still running (its signal is
   * aborted too), decides it.
   */
  stop(reason: unknown): void {
    if (this.decided) return;
    this.#abort(reason);
    if (!this.#firstFailed) return;
    this.decided = true;
    this.#owner.hedgesFailed(reason);
  }

  /** Aborts every hedge in flight with `reason`, and sends no more. */
  #abort(reason: unknown): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#chances = 0;
    if (this.#copies.size === 0) return;
    const copies = [...this.#copies];
    this.#copies.clear();
    const circuit = this.#owner.core.circuit;
    for (const copy of copies) {
      copy.end();
      if (copy.ticket >= 0) circuit?.abandon(copy.ticket);
      copy.attemptContext.abort(reason);
    }
  }
}

/** One hedge: a copy of the attempt, with its own context, signal, slot, token and ticket. */
class Copy implements AttemptOwner {
  readonly #hedging: Hedging;
  readonly #owner: HedgeOwner;
  /** Its own context and signal, with the attempt number of the copy it hedges. */
  readonly attemptContext: AttemptContext;
  readonly ticket: number;
  #release: (() => void) | undefined;
  #timer: ClearablePromise<unknown> | undefined;
  /** Ended on its own or aborted. */
  over = false;

  constructor(
    hedging: Hedging,
    owner: HedgeOwner,
    release: (() => void) | undefined,
    ticket: number,
  ) {
    this.#hedging = hedging;
    this.#owner = owner;
    this.#release = release;
    this.ticket = ticket;
    const name = functionName(owner.kind, owner.work) ?? '<anonymous>';
    this.attemptContext = new AttemptContext(owner.id, hedging.attempt, name);
  }

  context(): AttemptContext {
    return this.attemptContext;
  }

  isCurrent(attempt: number): boolean {
    return !this.over && this.#owner.isCurrent(attempt);
  }

  refuses(): boolean {
    return this.#owner.refuses();
  }

  timedOut(error: TimeoutError): void {
    this.attemptContext.abort(error);
  }

  start(): void {
    const owner = this.#owner;
    let out: unknown;
    try {
      // In the caller's async context, as the first copy runs.
      out = owner.scope.runInAsyncScope(this.#invoke, this);
    } catch (error) {
      this.#ended(false, error);
      return;
    }
    if (!isThenable(out)) {
      this.#ended(true, out);
      return;
    }
    const timeout = owner.policy.timeout;
    const promise = timed(out, timeout, this);
    if (timeout !== Infinity) this.#timer = promise as ClearablePromise<unknown>;
    promise.then(
      (value) => this.#ended(true, value),
      (error: unknown) => this.#ended(false, error),
    );
  }

  #invoke(): unknown {
    const owner = this.#owner;
    return invoke(this, owner.kind, owner.work, owner.input, this.#hedging.attempt);
  }

  #ended(ok: boolean, value: unknown): void {
    if (this.over) return;
    this.end();
    this.#hedging.ended(this, ok, value);
  }

  /** Gives back its slot and clears its timeout. */
  end(): void {
    this.over = true;
    this.#timer?.clear();
    this.#timer = undefined;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}

/**
 * The hedging of attempt `attempt`, or `undefined` when it gets none: a promise task, a delay of
 * `Infinity`, or a percentile delay before {@link HEDGE_DEFAULTS.minimumSamples} attempts were
 * measured. A percentile switches the instance's latency window on at its first use.
 */
export function armHedge(
  owner: HedgeOwner,
  attempt: number,
  hedge: ResolvedHedge,
): Hedging | undefined {
  if (owner.kind === Kind.PROMISE) return undefined;
  let delay = hedge.delay;
  if (hedge.quantile !== undefined) {
    const core = owner.core;
    let latency = core.latency;
    if (latency === undefined) {
      core.latency = latency = new LatencyWindow();
      // The attempt now starting is the first one measured.
      owner.attemptAt = performance.now();
    }
    if (latency.measured < HEDGE_DEFAULTS.minimumSamples) return undefined;
    delay = latency.quantile(hedge.quantile) as number;
  }
  if (!(delay < Infinity)) return undefined;
  return new Hedging(owner, attempt, delay, hedge.max);
}

/**
 * Feeds the latency window, when on, with attempt latencies: one sample per attempt, the
 * duration of its first copy, either until it succeeded or, when a hedge won, until it was
 * aborted (its latency was at least that, so it still counts among the slow ones and the
 * percentile does not drift down). Hedges and failed attempts are not measured.
 */
export function measureAttempt(owner: HedgeOwner): void {
  const latency = owner.core.latency;
  const at = owner.attemptAt;
  if (latency !== undefined && at !== undefined) latency.add(performance.now() - at);
}
