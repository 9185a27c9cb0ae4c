import pRetry from 'p-retry';
import { describe } from '../internal/assert.js';
import type { ResolvedRetryDelay } from '../resilience/backoff.js';

/**
 * Carries whatever an attempt threw through `p-retry`, which would otherwise refuse to retry a
 * `TypeError` or a non-Error value. Never leaves the engine: the caller gets `value` back.
 */
class AttemptFailure extends Error {
  readonly value: unknown;
  constructor(value: unknown) {
    super('attempt failed');
    this.value = value;
  }
}

/** Wraps a thrown value for `p-retry`. */
function wrapFailure(value: unknown): Error {
  return new AttemptFailure(value);
}

/** The value an attempt threw, from whatever `p-retry` rejected with. */
function unwrapFailure(error: unknown): unknown {
  return error instanceof AttemptFailure ? error.value : error;
}

/** The delay before the attempt after failed attempt `failed`: `backoff * 2 ** (failed - 1)` ms. */
export function retryDelay(backoff: number, failed: number): number {
  return Math.round(backoff * 2 ** (failed - 1));
}

/** How a task's retry delays are computed (its policy's fields). */
export interface DelayPolicy extends ResolvedRetryDelay {
  readonly retryBackoff: number;
}

/**
 * The delays of one retry loop. With d = `retryBackoff * 2 ** (n - 1)` for failed attempt n:
 * `none` sleeps d, `full` uniform [0, d], `equal` d/2 + uniform [0, d/2], `decorrelated`
 * uniform [`retryBackoff`, 3 × the previous sleep] (the first previous sleep is `retryBackoff`).
 * A number from `retryDelay` is used as it is; `retryMaxDelay` caps every delay, last. Jitter
 * reads `Math.random` at call time.
 */
class Delays {
  readonly #policy: DelayPolicy;
  #previous: number;

  constructor(policy: DelayPolicy) {
    this.#policy = policy;
    this.#previous = policy.retryBackoff;
  }

  /** The delay after failed attempt `failed` with `value`; throws what `retryDelay` throws. */
  next(value: unknown, failed: number): number {
    const policy = this.#policy;
    let delay: number | undefined;
    if (policy.retryDelay !== undefined) {
      delay = policy.retryDelay(value, failed);
      if (delay !== undefined && !(typeof delay === 'number' && delay >= 0 && delay < Infinity)) {
        throw new RangeError(
          `\`retryDelay\` must return a finite number >= 0 or undefined, received ${describe(delay)}`,
        );
      }
    }
    delay ??= this.#computed(failed);
    delay = Math.round(Math.min(delay, policy.retryMaxDelay));
    this.#previous = delay;
    return delay;
  }

  #computed(failed: number): number {
    const { retryBackoff: backoff, retryJitter: jitter } = this.#policy;
    if (jitter === 'decorrelated') {
      const high = Math.max(backoff, 3 * this.#previous);
      return backoff + Math.random() * (high - backoff);
    }
    const d = backoff * 2 ** (failed - 1);
    if (jitter === 'full') return Math.random() * d;
    if (jitter === 'equal') return d / 2 + Math.random() * (d / 2);
    return d;
  }
}

/** What the retry loop asks of the execution it runs for. */
export interface RetryOwner {
  /** Starts attempt `attempt` (2, 3, ...); its outcome comes back through the loop. */
  attemptNext(attempt: number): void;
  /** Whether failed attempt `attempt` is retried. */
  shouldRetry(value: unknown, attempt: number): boolean;
  /**
   * The retry is decided: announce it. `false` when the task ended or the instance stopped
   * meanwhile (`retryDelay` is user code): then there is no retry.
   */
  retrying(value: unknown, attempt: number, sleep: number): boolean;
  /** The loop ended: with an attempt's success, or the last failure (or `signal.reason`). */
  loopEnded(ok: boolean, value: unknown): void;
}

/** How `retry()` asks about each failure. */
interface RetryHooks<T> {
  /** Runs attempt `attempt` (2, 3, ...); rejects with `wrapFailure(value)` on failure. */
  attempt(attempt: number): Promise<T>;
  shouldRetry(value: unknown, attempt: number): boolean;
  retrying(value: unknown, attempt: number, sleep: number): boolean;
}

// setTimeout takes at most 2 ** 31 - 1 ms (a longer delay fires at once): a longer sleep re-arms.
const LONGEST_TIMER = 2 ** 31 - 1;

/** Resolves after `ms`, or rejects with `signal.reason` once `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout>;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const arm = (left: number): void => {
      timer = setTimeout(
        () => {
          if (left > LONGEST_TIMER) {
            arm(left - LONGEST_TIMER);
            return;
          }
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
        Math.min(left, LONGEST_TIMER),
      );
    };
    arm(ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Continues a task whose first attempt failed with `firstFailure`, on `p-retry`: at most
 * `retries` more attempts. The first failure is replayed as p-retry's first attempt, so a task
 * that succeeds at once never enters this loop. Each delay is computed once, here: the retry is
 * announced with it, then slept (p-retry itself is told to wait 0 ms).
 * Rejects with the last value thrown (unwrapped), or with `signal.reason` once `signal` aborts.
 */
function retry<T>(
  firstFailure: unknown,
  retries: number,
  policy: DelayPolicy,
  signal: AbortSignal,
  hooks: RetryHooks<T>,
): Promise<T> {
  const delays = new Delays(policy);
  // What `retryDelay` threw (or the RangeError of a bad value): the task fails with it.
  let refused: { error: unknown } | undefined;
  return pRetry(
    (attempt) =>
      attempt === 1 ? Promise.reject(wrapFailure(firstFailure)) : hooks.attempt(attempt),
    {
      retries,
      minTimeout: 0,
      maxTimeout: 0,
      randomize: false,
      signal,
      // Called by p-retry only while retries are left.
      shouldRetry: ({ error, attemptNumber }) => {
        const value = unwrapFailure(error);
        if (!hooks.shouldRetry(value, attemptNumber)) return false;
        let delay: number;
        try {
          delay = delays.next(value, attemptNumber);
        } catch (thrown) {
          refused = { error: thrown };
          return false;
        }
        // A listener of the announcement may end the task too: its signal then aborts.
        if (!hooks.retrying(value, attemptNumber, delay) || signal.aborted) return false;
        return delay > 0 ? sleep(delay, signal) : true;
      },
    },
  ).catch((error: unknown) => {
    throw refused === undefined ? unwrapFailure(error) : refused.error;
  });
}

/**
 * The retries of one execution whose first attempt failed: the loop runs on `p-retry` and gets
 * the outcome of each later attempt from the execution.
 */
export class RetryLoop {
  #attempt: { resolve: (value: unknown) => void; reject: (error: unknown) => void } | undefined;

  constructor(
    owner: RetryOwner,
    firstFailure: unknown,
    retries: number,
    policy: DelayPolicy,
    signal: AbortSignal,
  ) {
    retry(firstFailure, retries, policy, signal, {
      attempt: (next) =>
        new Promise((resolve, reject) => {
          this.#attempt = { resolve, reject };
          owner.attemptNext(next);
        }),
      shouldRetry: (value, failed) => owner.shouldRetry(value, failed),
      retrying: (value, failed, sleep) => owner.retrying(value, failed, sleep),
    }).then(
      (value) => owner.loopEnded(true, value),
      (error: unknown) => owner.loopEnded(false, error),
    );
  }

  /** The current attempt succeeded with `value`. */
  succeeded(value: unknown): void {
    this.#attempt?.resolve(value);
  }

  /** The current attempt failed with `value`. */
  failed(value: unknown): void {
    this.#attempt?.reject(wrapFailure(value));
  }

  /** The task settled outside the loop (cancelled, shut down): the loop ends too. */
  end(reason: unknown): void {
    this.#attempt?.reject(reason);
  }
}
