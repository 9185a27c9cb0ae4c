// The circuit breaker as its users see it (`dvt.circuit`), as it tells its owner of changes, and
// as the engine uses it (in process or shared by a back end).
import type { CircuitOpenError } from '../errors.js';

/**
 * A circuit breaker's state. `'closed'`: attempts start as usual. `'open'`: attempts fail at
 * once with `CircuitOpenError`. `'half-open'`: a few trial attempts start and decide whether it
 * closes or opens again.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * An instance's circuit breaker as its users see it (`dvt.circuit`).
 *
 * @example
 * ```ts
 * import type { CircuitView } from 'dovetailjs';
 * declare const circuit: CircuitView;
 * if (circuit.state !== 'closed') console.log(`breaker ${circuit.state}`);
 * circuit.isolate(); // maintenance: hold it open
 * circuit.reset(); // done: close it
 * ```
 */
export interface CircuitView {
  /**
   * The state now. An open circuit whose `halfOpenAfter` has passed turns half-open when this
   * is read (or when an attempt asks to start), and `circuit_half_open` fires then.
   */
  readonly state: CircuitState;
  /**
   * Holds the circuit open until {@link CircuitView.reset}: attempts fail with a
   * `CircuitOpenError` whose `retryAt` is `Infinity`. Emits `circuit_open` unless it was open
   * already (an open circuit stays open, now without an end, and emits nothing).
   */
  isolate(): void;
  /**
   * Closes the circuit and forgets the failures counted so far. Emits `circuit_closed` unless it
   * was closed already.
   */
  reset(): void;
}

/** What the breaker tells its owner: each method is called once per change of state. */
export interface CircuitListener {
  /**
   * It opened: `failures` counted (in a row, within the ratio window, `1` for a failed trial, or
   * those counted so far for `isolate()`), `error` of the failure that opened it (`undefined`
   * for `isolate()`), `retryAt` its end (epoch ms; `Infinity` when isolated).
   */
  opened(failures: number, error: unknown, retryAt: number): void;
  /** It turned half-open: trial attempts may start. */
  halfOpened(): void;
  /** It closed: its trials succeeded, or `reset()`. */
  closed(): void;
}

/**
 * A circuit breaker as the engine uses it: in this process ({@link Circuit}), or one whose state
 * a shared back end holds for every process.
 */
export interface CircuitControl {
  /** The frozen public view (`dvt.circuit`). */
  readonly view: CircuitView;
  /** The state now. */
  readonly state: CircuitState;
  /**
   * Asks to start an attempt: a ticket, the error to fail the task with, or (a shared circuit
   * asking its store whether the attempt may be a trial) a promise of either.
   */
  admit(): number | CircuitOpenError | Promise<number | CircuitOpenError>;
  /** The error an attempt would get now, without taking a trial's place; `undefined` if none. */
  refusal(): CircuitOpenError | undefined;
  /** How an admitted attempt ended (throws what `isFailure` threw). */
  record(ticket: number, ok: boolean, error?: unknown): void;
  /** An admitted attempt will report no outcome. */
  abandon(ticket: number): void;
}
