import { CancelledError, CircuitOpenError, QueueFullError, ShutdownError } from '../errors.js';
import type { ResolvedCircuitOptions, ResolvedCircuitRatio } from './circuit-options.js';
import { RatioWindow } from './ratio-window.js';
import type { CircuitControl, CircuitListener, CircuitState, CircuitView } from './circuit-view.js';

// Each state carries its own data. Every change of state takes a new ticket number, so an
// outcome reported with the ticket of an earlier period is recognised as stale.
interface Closed {
  readonly state: 'closed';
}
interface Open {
  readonly state: 'open';
  readonly retryAt: number;
  /** The error every attempt refused in this period gets (built on the first refusal). */
  refusal: CircuitOpenError | undefined;
}
interface HalfOpen {
  readonly state: 'half-open';
  /** The end of the open period just over: what a refused attempt's error carries. */
  readonly retryAt: number;
  /** Trials admitted and not abandoned. */
  trials: number;
  /** Trials that succeeded. */
  passed: number;
  refusal: CircuitOpenError | undefined;
}
type Phase = Closed | Open | HalfOpen;

const CLOSED: Closed = Object.freeze({ state: 'closed' });
const SILENT: CircuitListener = Object.freeze({
  opened: () => undefined,
  halfOpened: () => undefined,
  closed: () => undefined,
});
// Read at call time, so that a test's fake clock applies.
const wallClock = (): number => Date.now();

/** The errors that tell nothing about the upstream: never a failure, never a success. */
export const neverCounts = (error: unknown): boolean =>
  error instanceof CancelledError ||
  error instanceof ShutdownError ||
  error instanceof QueueFullError ||
  error instanceof CircuitOpenError;

/**
 * The circuit breaker's state machine. It knows nothing of tasks: its owner asks
 * {@link Circuit.admit} before each attempt would start and reports each admitted attempt's end
 * through {@link Circuit.record} (or {@link Circuit.abandon}), with the ticket `admit()` gave.
 *
 * It holds no timer. An open circuit turns half-open lazily: at the first `admit()`,
 * `refusal()` or read of `state` at or after its `retryAt`, which calls `halfOpened()` before
 * doing its own work. So `circuit_half_open` fires when the circuit is first looked at after
 * `halfOpenAfter`, never while nobody asks, and there is nothing to clean up.
 *
 * Outcomes count only in the period they were admitted in: an attempt that started while closed
 * and ends after the circuit opened (or after it closed again) changes nothing, and only the
 * attempts admitted while half-open are trials.
 *
 * Listener calls are synchronous and made after the state changed, so a listener may call the
 * circuit again (`reset()` from `halfOpened()`); they must not throw (an owner routes them
 * through its guarded bus).
 */
export class Circuit implements CircuitControl {
  /** The frozen public view (`dvt.circuit`). */
  readonly view: CircuitView;
  readonly #listener: CircuitListener;
  readonly #now: () => number;
  /** Failures in a row that open it; `Infinity` in ratio mode, where the window decides. */
  readonly #threshold: number;
  readonly #ratio: ResolvedCircuitRatio | undefined;
  readonly #halfOpenAfter: number;
  readonly #halfOpenCalls: number;
  readonly #isFailure: ((error: unknown) => boolean) | undefined;
  #phase: Phase = CLOSED;
  /** The ticket of the current period. */
  #ticket = 0;
  /** Consecutive mode: failures in a row. */
  #consecutive = 0;
  /** Ratio mode: the outcomes of the last `window` ms. */
  readonly #window: RatioWindow | undefined;
  /** Ratio mode: the latest failure's error, for an opening that a success triggers. */
  #lastError: unknown = undefined;

  /**
   * @param options - Validated options (`resolveCircuitOptions`).
   * @param listener - Told of each change of state.
   * @param now - The clock (epoch ms), read at each call that needs the time.
   */
  constructor(
    options: ResolvedCircuitOptions,
    listener: CircuitListener = SILENT,
    now: () => number = wallClock,
  ) {
    this.#listener = listener;
    this.#now = now;
    this.#ratio = options.ratio;
    this.#threshold = options.threshold ?? Infinity;
    this.#halfOpenAfter = options.halfOpenAfter;
    this.#halfOpenCalls = options.halfOpenCalls;
    this.#isFailure = options.isFailure;
    const ratio = options.ratio;
    this.#window = ratio === undefined ? undefined : new RatioWindow(ratio.window, now());
    this.view = viewOf(this);
  }

  /** The state now (turning half-open first if the open period is over). */
  get state(): CircuitState {
    const phase = this.#phase;
    return phase.state === 'open' ? this.#observe(phase).state : phase.state;
  }

  /**
   * Asks to start an attempt. Closed: granted. Open before `retryAt`: refused. Half-open: granted
   * to the first `halfOpenCalls` attempts of the period (the trials), refused after them until
   * the trials decide (an abandoned trial gives its place back).
   * @returns A ticket (a number) to hand to {@link Circuit.record} or {@link Circuit.abandon}
   * when the attempt ends; or the `CircuitOpenError` to fail the task with (one object per
   * period, shared by the attempts it refuses).
   */
  admit(): number | CircuitOpenError {
    let phase = this.#phase;
    if (phase.state === 'closed') return this.#ticket;
    if (phase.state === 'open') {
      phase = this.#observe(phase);
      if (phase.state === 'closed') return this.#ticket;
    }
    if (phase.state === 'half-open' && phase.trials < this.#halfOpenCalls) {
      phase.trials += 1;
      return this.#ticket;
    }
    return this.#refuse(phase);
  }

  /**
   * The error {@link Circuit.admit} would give now, without taking a trial's place; `undefined`
   * when it would grant. For failing a task before it waits for a slot or a token.
   */
  refusal(): CircuitOpenError | undefined {
    let phase = this.#phase;
    if (phase.state === 'open') phase = this.#observe(phase);
    if (phase.state === 'closed') return undefined;
    if (phase.state === 'half-open' && phase.trials < this.#halfOpenCalls) return undefined;
    return this.#refuse(phase);
  }

  /**
   * Reports how an admitted attempt ended (a timeout is a failure). `ok` false with one of the
   * errors that never count (`CancelledError`, `ShutdownError`, `QueueFullError`,
   * `CircuitOpenError`) is the same as {@link Circuit.abandon}; any other error is a failure if
   * `isFailure` says so (by default always), else a success. A ticket of an earlier period is
   * ignored. Call it, or `abandon()`, once per admitted attempt.
   * @param ticket - What `admit()` returned for the attempt.
   * @param ok - Whether the attempt succeeded.
   * @param error - What it failed with (when `ok` is false).
   * @throws What `isFailure` threw, after counting the outcome as a failure.
   */
  record(ticket: number, ok: boolean, error?: unknown): void {
    if (ticket !== this.#ticket) return;
    let failed = false;
    let threw = false;
    let thrown: unknown;
    if (!ok) {
      if (neverCounts(error)) {
        this.abandon(ticket);
        return;
      }
      const isFailure = this.#isFailure;
      if (isFailure === undefined) failed = true;
      else {
        try {
          failed = Boolean(isFailure(error));
        } catch (problem) {
          // Counted as a failure all the same: a trial must decide, and a broken predicate
          // should err towards protecting the upstream.
          failed = threw = true;
          thrown = problem;
        }
      }
    }
    // `isFailure` may have called the circuit (isolate(), reset()): the period may be over.
    if (ticket === this.#ticket) this.#count(failed, error);
    if (threw) throw thrown;
  }

  /**
   * An admitted attempt will report no outcome (its task was cancelled before the attempt
   * ended): a trial gives its place back to the next attempt; otherwise nothing changes. A
   * ticket of an earlier period is ignored.
   * @param ticket - What `admit()` returned for the attempt.
   */
  abandon(ticket: number): void {
    const phase = this.#phase;
    if (ticket !== this.#ticket || phase.state !== 'half-open') return;
    if (phase.trials > phase.passed) phase.trials -= 1;
  }

  /**
   * Holds the circuit open until {@link Circuit.reset}; `opened()` fires unless it was open
   * already (then only its end moves to `Infinity`).
   */
  isolate(): void {
    const phase = this.#phase;
    if (phase.state === 'open') {
      if (phase.retryAt !== Infinity)
        this.#phase = { state: 'open', retryAt: Infinity, refusal: undefined };
      return;
    }
    // Half-open counts nothing but its trials: #failures() is 0 there.
    this.#open(this.#failures(), undefined, Infinity);
  }

  /** Closes the circuit and forgets what it counted; `closed()` fires unless it was closed. */
  reset(): void {
    const changed = this.#phase.state !== 'closed';
    this.#close();
    if (changed) this.#listener.closed();
  }

  /** Counts a current-period outcome. */
  #count(failed: boolean, error: unknown): void {
    const phase = this.#phase;
    if (phase.state === 'half-open') {
      if (failed) this.#open(1, error, this.#now() + this.#halfOpenAfter);
      else if ((phase.passed += 1) >= this.#halfOpenCalls) {
        this.#close();
        this.#listener.closed();
      }
      return;
    }
    if (phase.state !== 'closed') return;
    const window = this.#window;
    if (window === undefined) {
      if (!failed) this.#consecutive = 0;
      else if ((this.#consecutive += 1) >= this.#threshold) {
        this.#open(this.#consecutive, error, this.#now() + this.#halfOpenAfter);
      }
      return;
    }
    const now = this.#now();
    window.add(failed, now);
    if (failed) this.#lastError = error;
    const ratio = this.#ratio as ResolvedCircuitRatio;
    const calls = window.calls;
    if (calls >= ratio.minimumCalls && window.failures / calls >= ratio.failures) {
      this.#open(window.failures, this.#lastError, now + this.#halfOpenAfter);
    }
  }

  /** The failures counted so far in this period (while closed; 0 otherwise). */
  #failures(): number {
    const window = this.#window;
    if (window === undefined) return this.#consecutive;
    window.advance(this.#now());
    return window.failures;
  }

  #open(failures: number, error: unknown, retryAt: number): void {
    this.#phase = { state: 'open', retryAt, refusal: undefined };
    this.#ticket += 1;
    this.#forget();
    this.#listener.opened(failures, error, retryAt);
  }

  #close(): void {
    this.#phase = CLOSED;
    this.#ticket += 1;
    this.#forget();
  }

  /** The lazy half-open: the first look at an open circuit at or after its end turns it. */
  #observe(phase: Open): Phase {
    // An isolated circuit (open until reset()) never turns: no clock to read per refused task.
    if (phase.retryAt === Infinity || this.#now() < phase.retryAt) return phase;
    this.#phase = {
      state: 'half-open',
      retryAt: phase.retryAt,
      trials: 0,
      passed: 0,
      refusal: undefined,
    };
    this.#ticket += 1;
    this.#listener.halfOpened();
    // The listener may have moved it on (reset(), isolate()).
    return this.#phase;
  }

  #refuse(phase: Open | HalfOpen): CircuitOpenError {
    if (phase.refusal !== undefined) return phase.refusal;
    const calls = this.#halfOpenCalls;
    const message =
      phase.state === 'open'
        ? undefined
        : `circuit is half-open: ${calls === 1 ? 'its trial attempt has' : `all ${calls} trial attempts have`} started`;
    return (phase.refusal = new CircuitOpenError(message, { retryAt: phase.retryAt }));
  }

  /** Drops the counts: a period starts afresh. */
  #forget(): void {
    this.#consecutive = 0;
    this.#lastError = undefined;
    this.#window?.clear();
  }
}

/** A frozen view of `circuit` whose methods work detached (`const { reset } = dvt.circuit`). */
export function viewOf(circuit: {
  readonly state: CircuitState;
  isolate(): void;
  reset(): void;
}): CircuitView {
  return Object.freeze({
    get state(): CircuitState {
      return circuit.state;
    },
    isolate: (): void => circuit.isolate(),
    reset: (): void => circuit.reset(),
  });
}
