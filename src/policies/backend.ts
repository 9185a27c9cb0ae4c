import type { KeyLimits } from '../queue/keys.js';
import type { CircuitControl, CircuitListener } from '../resilience/circuit-view.js';
import type { ResolvedCircuitOptions } from '../resilience/circuit-options.js';
import type { Gate } from './gate.js';
import type { RateLimiter } from './rate-limit.js';

/**
 * Where an instance's concurrency gate and rate limiter live. The default keeps both in this
 * process; a shared back end (for example `dovetailjs/redis`) makes every process that uses it share
 * one limit and one bucket.
 *
 * @example
 * ```ts
 * import { Dovetail, LocalGate, TokenBucket, type Backend } from 'dovetailjs';
 * const backend: Backend = {
 *   createGate: ({ concurrency }) => new LocalGate(concurrency),
 *   createRateLimiter: ({ perSecond, burst }) => new TokenBucket(perSecond, burst),
 * };
 * const dvt = new Dovetail({ concurrency: 4, backend });
 * ```
 */
export interface Backend {
  /**
   * Builds the gate for `concurrency` slots (called only when `concurrency` is finite).
   * @param hooks - How to report trouble with the shared store (the instance emits `backend_error`).
   */
  createGate(options: { concurrency: number }, hooks?: BackendHooks): Gate;
  /**
   * Builds the limiter (called only when `rateLimit` is set).
   * @param hooks - How to report trouble with the shared store (the instance emits `backend_error`).
   */
  createRateLimiter(
    options: { perSecond: number; burst: number },
    hooks?: BackendHooks,
  ): RateLimiter;
  /**
   * Shares the instance's pause with every process of the back end. `follow` is told each end
   * the shared store holds (epoch ms, `Infinity` untimed, `undefined` lifted), whoever set it.
   * Without it, `pause()` is refused with this back end.
   * @internal
   */
  createPause?(follow: (until: number | undefined) => void, hooks?: BackendHooks): SharedPause;
  /**
   * Shares the concurrency limit: `initial` is written as the shared limit (the last written
   * wins); `follow` is told each limit another process writes. Without it, writing
   * `concurrency` is refused with this back end.
   * @internal
   */
  createLimit?(initial: number, follow: (limit: number) => void, hooks?: BackendHooks): SharedLimit;
  /**
   * Shares `perKey`: one concurrency limit and one bucket per key for every process. Without it,
   * `perKey` is refused with this back end.
   * @internal
   */
  createKeys?(
    options: {
      concurrency: number;
      rateLimit: { readonly perSecond: number; readonly burst: number } | undefined;
    },
    hooks?: BackendHooks,
  ): KeyLimits;
  /**
   * Shares the circuit breaker: its counts and state are one for every process. Without it,
   * `circuitBreaker` is refused with this back end.
   * @internal
   */
  createCircuit?(
    options: ResolvedCircuitOptions,
    listener: CircuitListener,
    hooks?: BackendHooks,
  ): CircuitControl & { close(): Promise<void> | void };
  /** Releases what the back end holds; called once by `shutdown()`. */
  close?(): Promise<void> | void;
}

/**
 * A pause held in a shared store: what one process sets, every process follows. @internal
 */
export interface SharedPause {
  /** Pauses every process until `until` (epoch ms; `Infinity`: until a resume); a later end wins. */
  pause(until: number): void;
  /** Lifts the pause for every process. */
  resume(): void;
  /** Stops following (this process shuts down); leaves the shared pause as it is. */
  close(): Promise<void> | void;
}

/** A concurrency limit held in a shared store. @internal */
export interface SharedLimit {
  /** Makes `limit` the limit of every process. */
  write(limit: number): void;
  /** Stops following. */
  close(): Promise<void> | void;
}

/**
 * One failure of a shared store, as a back end reports it through {@link BackendHooks}.
 * @example
 * ```ts
 * import { BackendError, type BackendProblem } from 'dovetailjs';
 * const problem: BackendProblem = {
 *   error: new BackendError('no answer within 5000 ms', { key: 'payments-api' }),
 *   key: 'payments-api',
 *   operation: 'rate_limit',
 *   fallback: 'fail',
 * };
 * ```
 */
export interface BackendProblem {
  /** The `BackendError` (its `cause` is what the store's client threw). */
  error: unknown;
  /** The shared limit's key. */
  key: string;
  /**
   * What failed: getting a slot, a token, or keeping a running task's lease; or sharing a
   * pause, the concurrency limit, the circuit breaker's state, or listening for changes
   * (`'control'`).
   */
  operation: 'gate' | 'rate_limit' | 'lease' | 'pause' | 'concurrency' | 'circuit' | 'control';
  /** What the back end does meanwhile: fail the tasks, or use in-process limits. */
  fallback: 'fail' | 'local';
}

/**
 * What an instance hands to its back end's `createGate` and `createRateLimiter`: the one way a
 * back end, which knows nothing of the event bus, reports trouble. The instance turns each report
 * into a `backend_error` event (and a trace line).
 *
 * @example
 * ```ts
 * import { LocalGate, type Backend, type BackendHooks } from 'dovetailjs';
 * const backend: Backend = {
 *   createGate: ({ concurrency }, hooks?: BackendHooks) => {
 *     hooks?.report({ error: new Error('demo'), key: 'k', operation: 'gate', fallback: 'local' });
 *     return new LocalGate(concurrency);
 *   },
 *   createRateLimiter: () => ({ acquire: () => 0 }),
 * };
 * ```
 */
export interface BackendHooks {
  /** Reports one failure; never throws. */
  report(problem: BackendProblem): void;
}
