import { QueueFullError, type CircuitOpenError, type ShutdownError } from '../errors.js';
import type { LocalGate } from '../policies/gate.js';
import { TokenBucket, type TokenWait } from '../policies/rate-limit.js';
import type { MethodName } from '../events/types.js';
import type { ResolvedPolicy } from '../options.js';
import type { CircuitControl } from '../resilience/circuit-view.js';
import { Counted, type Outcome } from './accounting.js';
import type { Kind } from './attempt.js';
import { runSoon, type Core, type Member, type Sink } from './core.js';
import { Phase } from './phase.js';
import { TaskRecord } from './record.js';
import { refuseSoon } from './refused.js';
import { watch } from './signals.js';

/**
 * The way of an execution into its first attempt, and of every attempt to its tokens: entering
 * the instance (counts, `queued`, its signal, an open circuit, a pause), its key, the gate, and
 * the token waits, up to {@link Admission.launch}. {@link Execution} builds on it with the
 * attempts and the settling.
 */
export abstract class Admission extends TaskRecord {
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

  /** Starts attempt `attempt` once its tokens are taken (`waited`: ms spent waiting for them). */
  protected abstract launch(attempt: number, waited: number): void;
  /** Settles the execution: the one way out (see {@link Settling}). */
  protected abstract settle(ok: boolean, value: unknown, event: Outcome): void;
  /** Settles with `error`, as cancelled when it is a `CancelledError`. */
  protected abstract settleFailure(error: unknown): void;
  /** `shutdown({ wait: false })` (see {@link Member}). */
  abstract stop(reason: ShutdownError): void;
  /** A gate that cannot grant a slot fails the task (part of the gate's `GateJob`). */
  abstract reject(error: unknown): void;

  /** Enters the instance: counts, announces, and queues for its key and the gate. */
  start(): void {
    const core = this.core;
    core.accounting.enter(this);
    const events = core.events;
    if (events.wants('queued', this)) {
      events.publish(this.payload('queued'), this);
      // A listener may have ended the task already (clearQueue(), a shutdown without waiting).
      if (this.phase === Phase.SETTLED) return;
    }
    const signal = this.policy.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.cancel(signal.reason);
        return;
      }
      watch(signal, this);
    }
    const circuit = core.circuit;
    if (circuit !== undefined) {
      // An open circuit fails the task at once: no slot, no token, no call.
      const refused = circuit.refusal();
      if (refused !== undefined) {
        // A microtask later, with the tasks refused alongside: by then the caller holds the task
        // and has attached its handlers, so its rejection is not tracked as unhandled first (on
        // 100 000 refused tasks that tracking was an eighth of the time).
        refuseSoon(this, refused);
        return;
      }
      // The circuit turning half-open is announced: a listener may have ended the task.
      if (this.phase === Phase.SETTLED) return;
    }
    // A timed pause keeps the process alive while a task waits on it.
    if (core.pause.active) core.pause.hold(true);
    const key = this.key;
    if (key !== undefined && core.keys !== undefined) core.keys.enter(key, this);
    else this.toGate();
    if (core.accounting.pending > core.maxQueue) shed(this);
  }

  private toGate(): void {
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
    // Kept with the rare state (most keys have no bucket, or a token free): no field per task.
    if (waited > 0) this.hold().keyWaited = waited;
    this.toGate();
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
    // Told again by the lane that takes it (see GateJob.admitted): the first time counted. A
    // task still short of its key (see run()) waits on, and counts so for `maxQueue`.
    if (this.counted !== Counted.PENDING || core.pause.active || this.keyAhead()) return;
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
    if (this.keyAhead()) {
      // Its key's slot went to a task of a higher priority meanwhile: it waits for its key again
      // (its way through the key ends in a gate entry of its own), and this gate slot passes on.
      this.core.accounting.deactivate(this);
      release?.();
      return;
    }
    const key = this.key;
    if (key !== undefined) this.core.keys?.started(key, this);
    // With no gate, a slot adopted from a gate made meanwhile (see adopt()) stays held.
    if (release !== undefined) this.releaseSlot = release;
    this.attemptNext(1);
  }

  /**
   * Whether the task still has its key to pass: its key's slot went to a task of a higher
   * priority, or came back and the key's token is still to come (the wait a key's bucket hands
   * out is held until it ends). Its gate entry from before then may come first: it must not
   * start from it.
   */
  private keyAhead(): boolean {
    return (
      this.key !== undefined &&
      this.core.keys !== undefined &&
      (!this.keyHeld || this.holdings?.tokenWait !== undefined)
    );
  }

  /** @internal Part of {@link Member}. */
  adopt(gate: LocalGate): void {
    if (this.releaseSlot === undefined) this.releaseSlot = gate.adopt();
  }

  /** Fails the task, which still waits (counted pending), with `error`: a full queue shed it. */
  shed(error: QueueFullError): void {
    this.core.accounting.counters.shed += 1;
    this.settle(false, error, 'error');
  }

  /** @internal Part of {@link Parked}: the pause ended. */
  unpark(): void {
    if (this.phase === Phase.TOKEN) this.launch(this.attempt + 1, 0);
  }

  // ---- the circuit --------------------------------------------------------------------------

  /** An open circuit fails the task with `error`, whatever retries remain. @internal */
  refuse(error: CircuitOpenError): void {
    if (this.phase === Phase.SETTLED) return;
    this.shortCircuit(error);
  }

  /** An open circuit fails the task with `error`, whatever retries remain. */
  protected shortCircuit(error: CircuitOpenError): void {
    this.core.accounting.counters.shortCircuited += 1;
    this.settle(false, error, 'error');
  }

  /** The circuit refused the attempt as it was about to start. */
  protected refusedAtStart(error: CircuitOpenError): void {
    // The circuit opened while the attempt waited for its token: the token goes back.
    const limiter = this.core.limiter;
    if (limiter instanceof TokenBucket) limiter.refund(this.policy.cost);
    this.shortCircuit(error);
  }

  /** A shared circuit asks its store whether the attempt may start (a half-open trial). */
  protected admitLater(
    circuit: CircuitControl,
    pending: Promise<number | CircuitOpenError>,
    attempt: number,
  ): void {
    pending.then(
      (ticket) => {
        if (typeof ticket === 'number') {
          if (this.phase !== Phase.TOKEN) circuit.abandon(ticket);
          else {
            this.ticket = ticket;
            this.launch(attempt, 0);
          }
        } else if (this.phase === Phase.TOKEN) this.refusedAtStart(ticket);
      },
      (error: unknown) => {
        if (this.phase === Phase.TOKEN) this.settleFailure(error);
      },
    );
  }

  // ---- tokens --------------------------------------------------------------------------------

  /**
   * The slot is held: the attempt's tokens (its key's on a retry, then the instance's), then
   * {@link launch}. Also part of {@link RetryOwner}: each retry comes back here. @internal
   */
  attemptNext(attempt: number): void {
    this.phase = Phase.TOKEN;
    const circuit = this.core.circuit;
    if (circuit !== undefined) {
      // A retry (or a task that waited for its slot) meets an open circuit before its token.
      const refused = circuit.refusal();
      if (refused !== undefined) {
        this.shortCircuit(refused);
        return;
      }
      // Its turning half-open is announced: a listener may have ended the task.
      if (this.phase !== Phase.TOKEN) return;
    }
    // The first attempt took its key's token before the gate; a retry takes one here.
    const key = this.key;
    const bucket = attempt > 1 && key !== undefined ? this.core.keys?.bucketOf(key) : undefined;
    if (bucket === undefined) {
      this.instanceToken(attempt, attempt === 1 ? (this.holdings?.keyWaited ?? 0) : 0);
      return;
    }
    this.awaitToken(
      bucket.take(this.policy.cost, this.policy.priority, this.seq),
      bucket instanceof TokenBucket ? bucket : undefined,
      (ms) => this.instanceToken(attempt, ms),
    );
  }

  private instanceToken(attempt: number, keyWaited: number): void {
    const limiter = this.core.limiter;
    if (limiter === undefined || this.tokenTaken) {
      this.tokenTaken = false;
      this.launch(attempt, keyWaited);
      return;
    }
    let waited: number | Promise<number>;
    const bucket = limiter instanceof TokenBucket ? limiter : undefined;
    try {
      // The in-process bucket hands back a wait that can be called off directly: no
      // AbortController per task.
      waited =
        bucket !== undefined
          ? bucket.take(this.policy.cost, this.policy.priority, this.seq)
          : limiter.acquire(this.signal(), this.policy.cost);
    } catch (error) {
      // The limiter could not give a token (a shared back end failed): the task fails with that
      // error, unretried.
      this.settleFailure(error);
      return;
    }
    this.awaitToken(waited, bucket, (ms) => this.launch(attempt, keyWaited + ms));
  }

  /**
   * Goes on with `then(ms)` once a token wait is over (at once for a free token). `bucket` is the
   * in-process bucket waited on, if it is one: a wait served in the turn the task settled in
   * (its continuation comes a microtask later) gives its tokens back there. A shared back end's
   * token is spent.
   */
  private awaitToken(
    waited: number | Promise<number>,
    bucket: TokenBucket | undefined,
    then: (ms: number) => void,
  ): void {
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
        else bucket?.refund(this.policy.cost);
      },
      (error: unknown) => {
        // Aborted because the task settled: nothing to do. Anything else is a back-end failure.
        if (this.phase !== Phase.SETTLED) this.settleFailure(error);
      },
    );
  }
}

/**
 * `arrived` made the queue longer than `maxQueue`: with `'reject'` it fails; with `'drop-oldest'`
 * the oldest waiting task of the lowest priority fails instead, unless its priority is higher.
 */
function shed(arrived: Admission): void {
  const core = arrived.core;
  let victim: Member = arrived;
  if (core.queueOverflow === 'drop-oldest') {
    const oldest = core.accounting.oldestLowest(arrived);
    if (oldest !== undefined && oldest.priority <= arrived.priority) victim = oldest;
  }
  if (victim.counted === Counted.PENDING)
    victim.shed(new QueueFullError(undefined, { maxQueue: core.maxQueue }));
}
