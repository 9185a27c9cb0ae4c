/**
 * A rate limiter on task starts. `acquire()` takes one token: it returns `0` at once when a token
 * is free (no promise on the fast path), otherwise a promise of the milliseconds waited. If
 * `signal` aborts while waiting, the promise rejects with `signal.reason` and the token is given
 * back. A shared back end (several processes, one bucket) implements the same interface.
 */
export interface RateLimiter {
  /**
   * Takes one token.
   * @param signal - Stops waiting: the promise rejects with `signal.reason` and the token is given back.
   * @returns `0` when a token was free, else a promise of the milliseconds waited.
   */
  acquire(signal?: AbortSignal): number | Promise<number>;
}

/**
 * The in-process token bucket: `perSecond` tokens a second, at most `burst` saved up, waiters
 * served first come, first served by reserving future tokens.
 *
 * Written here rather than taken from a package: the ones on the registry (`limiter`,
 * `bottleneck`, `p-throttle`) either poll, do not report how long a caller waited, or cannot give
 * a reserved token back when the waiter is cancelled. This one keeps no timer while idle, reads
 * the clock and `setTimeout` at call time (so fake timers apply), and allocates nothing when a
 * token is free.
 *
 * @example
 * ```ts
 * import { TokenBucket } from 'dovetail';
 * const bucket = new TokenBucket(10, 2); // 10 a second, 2 at once
 * const waited = await bucket.acquire(); // 0: a token was free
 * console.log(waited);
 * ```
 */
export class TokenBucket implements RateLimiter {
  readonly #interval: number;
  readonly #burst: number;
  #tokens: number;
  #updated: number;

  /**
   * @param perSecond - Tokens added per second (> 0, already validated).
   * @param burst - Bucket size (>= 1, already validated).
   */
  constructor(perSecond: number, burst: number) {
    this.#interval = 1000 / perSecond;
    this.#burst = burst;
    this.#tokens = burst;
    this.#updated = performance.now();
  }

  /**
   * Takes one token: `0` at once when one is free, else a promise of the milliseconds waited.
   * @param signal - Stops waiting: rejects with `signal.reason` and gives the reserved token back.
   */
  acquire(signal?: AbortSignal): number | Promise<number> {
    const now = performance.now();
    // Refill; tokens may be negative: each waiter has reserved one future token.
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updated) / this.#interval);
    this.#updated = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    this.#tokens -= 1;
    // When the reserved token exists: the deficit below 0 (after taking ours) refills at 1/interval.
    const wait = (0 - this.#tokens) * this.#interval;
    return new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        this.#tokens += 1;
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(performance.now() - now);
      }, Math.ceil(wait));
      if (signal !== undefined) {
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }
}
