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
 * A wait for a token that its owner can call off without an AbortSignal: `cancel(reason)` rejects
 * it with `reason` and gives the reserved token back. Returned by {@link TokenBucket}.
 */
export interface TokenWait extends Promise<number> {
  /** Stops waiting: rejects with `reason` and gives the token back; no-op once settled. */
  cancel(reason?: unknown): void;
}

interface Waiter {
  readonly due: number;
  readonly start: number;
  resolve: (waited: number) => void;
  reject: (reason: unknown) => void;
  settled: boolean;
}

/**
 * The in-process token bucket: `perSecond` tokens a second, at most `burst` saved up, waiters
 * served first come, first served by reserving future tokens.
 *
 * Written here rather than taken from a package: the ones on the registry (`limiter`,
 * `bottleneck`, `p-throttle`) either poll, do not report how long a caller waited, or cannot give
 * a reserved token back when the waiter is cancelled. Waiters wait in a FIFO behind one timer
 * armed for the first of them (hundreds of waiters cost one timer, not hundreds); nothing is
 * held while idle; the clock and `setTimeout` are read at call time (so fake timers apply); and a
 * free token costs no allocation.
 *
 * @example
 * ```ts
 * import { TokenBucket } from 'dovetailjs';
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
  readonly #waiters: Waiter[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = Infinity;

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
   * Takes one token: `0` at once when one is free, else a {@link TokenWait} of the milliseconds
   * waited.
   * @param signal - Stops waiting: rejects with `signal.reason` and gives the reserved token back.
   */
  acquire(signal?: AbortSignal): number | TokenWait {
    const now = performance.now();
    // Refill; tokens may be negative: each waiter has reserved one future token.
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updated) / this.#interval);
    this.#updated = now;
    this.#tokens -= 1;
    if (this.#tokens >= 0) return 0;
    // Our token exists once the deficit below 0 has refilled.
    const due = now + -this.#tokens * this.#interval;
    let waiter!: Waiter;
    const wait = new Promise<number>((resolve, reject) => {
      waiter = { due, start: now, resolve, reject, settled: false };
    }) as TokenWait;
    wait.cancel = (reason?: unknown): void => this.#cancel(waiter, reason);
    this.#waiters.push(waiter);
    this.#arm(due);
    if (signal !== undefined) {
      if (signal.aborted) this.#cancel(waiter, signal.reason);
      else {
        const onAbort = (): void => this.#cancel(waiter, signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        void wait.then(
          () => signal.removeEventListener('abort', onAbort),
          () => signal.removeEventListener('abort', onAbort),
        );
      }
    }
    return wait;
  }

  #cancel(waiter: Waiter, reason: unknown): void {
    if (waiter.settled) return;
    waiter.settled = true;
    this.#tokens += 1;
    waiter.reject(reason);
    this.#rearm();
  }

  #arm(due: number): void {
    if (due >= this.#timerDue) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(due - performance.now())));
  }

  #rearm(): void {
    const waiters = this.#waiters;
    while (this.#head < waiters.length && (waiters[this.#head] as Waiter).settled) this.#head += 1;
    if (this.#head >= waiters.length) {
      // Nobody waits: no timer may keep the process alive.
      waiters.length = 0;
      this.#head = 0;
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerDue = Infinity;
      return;
    }
    const next = (waiters[this.#head] as Waiter).due;
    if (next !== this.#timerDue) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#arm(next);
    }
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerDue = Infinity;
    const now = performance.now();
    const waiters = this.#waiters;
    while (this.#head < waiters.length) {
      const waiter = waiters[this.#head] as Waiter;
      if (!waiter.settled) {
        if (waiter.due > now) break;
        waiter.settled = true;
        waiter.resolve(now - waiter.start);
      }
      this.#head += 1;
    }
    if (this.#head > 1024 && this.#head * 2 > waiters.length) {
      waiters.splice(0, this.#head);
      this.#head = 0;
    }
    this.#rearm();
  };
}
