import { WaitQueue, type Waiting } from '../queue/wait-queue.js';

/**
 * A rate limiter on task starts. `acquire()` takes one token: it returns `0` at once when a token
 * is free (no promise on the fast path), otherwise a promise of the milliseconds waited. If
 * `signal` aborts while waiting, the promise rejects with `signal.reason` and the token is given
 * back. A shared back end (several processes, one bucket) implements the same interface.
 */
export interface RateLimiter {
  /**
   * Takes one token (or `cost` tokens).
   * @param signal - Stops waiting: the promise rejects with `signal.reason` and the token is given back.
   * @param cost - Tokens to take (the task's `cost`, <= the bucket's burst); 1 when omitted.
   * @returns `0` when a token was free, else a promise of the milliseconds waited.
   */
  acquire(signal?: AbortSignal, cost?: number): number | Promise<number>;
}

/**
 * A wait for a token that its owner can call off without an AbortSignal: `cancel(reason)` rejects
 * it with `reason` and gives the reserved token back. Returned by {@link TokenBucket}.
 */
export interface TokenWait extends Promise<number> {
  /** Stops waiting: rejects with `reason` and gives the token back; no-op once settled. */
  cancel(reason?: unknown): void;
}

// Tokens are fractional: a waiter due now is served though rounding left it a hair short.
const EPSILON = 1e-9;

interface Waiter extends Waiting {
  readonly priority: number;
  readonly seq: number;
  readonly cost: number;
  readonly start: number;
  resolve: (waited: number) => void;
  reject: (reason: unknown) => void;
  settled: boolean;
}

/**
 * The in-process token bucket: `perSecond` tokens a second, at most `burst` saved up. Waiters are
 * served as tokens appear, highest priority first and in arrival order among equals; one that
 * needs more tokens than are there holds back the ones behind it (no starving a costly task).
 *
 * Written here rather than taken from a package: the ones on the registry (`limiter`,
 * `bottleneck`, `p-throttle`) either poll, do not report how long a caller waited, or cannot give
 * a reserved token back when the waiter is cancelled. Waiters wait behind one timer armed for the
 * first of them (hundreds of waiters cost one timer, not hundreds); nothing is held while idle;
 * the clock and `setTimeout` are read at call time (so fake timers apply); and a free token costs
 * no allocation.
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
  readonly #waiters = new WaitQueue<Waiter>();
  /** Waiters not yet served nor cancelled. */
  #live = 0;
  #arrivals = 0;
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

  /** The bucket's size. */
  get burst(): number {
    return this.#burst;
  }

  /**
   * Takes one token (or `cost`): `0` at once when free, else a {@link TokenWait} of the
   * milliseconds waited.
   * @param signal - Stops waiting: rejects with `signal.reason`; the waiter's place goes to the next.
   * @param cost - Tokens to take, <= `burst` (not checked here); 1 when omitted.
   */
  acquire(signal?: AbortSignal, cost = 1): number | TokenWait {
    const waited = this.take(cost, 0, (this.#arrivals += 1));
    if (typeof waited === 'number' || signal === undefined) return waited;
    if (signal.aborted) waited.cancel(signal.reason);
    else {
      const onAbort = (): void => waited.cancel(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const off = (): void => signal.removeEventListener('abort', onAbort);
      void waited.then(off, off);
    }
    return waited;
  }

  /**
   * Whether `cost` tokens are free now for a waiter of `priority` (nobody ahead of it waits).
   * @internal
   */
  available(cost: number, priority: number): boolean {
    this.#refill(performance.now());
    return this.#tokens + EPSILON >= cost && !this.#ahead(priority);
  }

  /** Gives back `cost` tokens taken for an attempt that never started. @internal */
  refund(cost: number): void {
    this.#refill(performance.now());
    this.#tokens = Math.min(this.#burst, this.#tokens + cost);
    this.#serve();
  }

  /** Whether the bucket is full and nobody waits (it can be forgotten). @internal */
  get full(): boolean {
    this.#refill(performance.now());
    return this.#live === 0 && this.#tokens + EPSILON >= this.#burst;
  }

  /**
   * Takes `cost` tokens for a waiter of `priority` (`seq` orders equals): `0` at once when they
   * are free and nobody ahead waits, else a {@link TokenWait}. @internal
   */
  take(cost: number, priority: number, seq: number): number | TokenWait {
    const now = performance.now();
    this.#refill(now);
    if (this.#tokens + EPSILON >= cost && !this.#ahead(priority)) {
      this.#tokens -= cost;
      return 0;
    }
    let waiter!: Waiter;
    const wait = new Promise<number>((resolve, reject) => {
      waiter = { priority, seq, cost, start: now, resolve, reject, settled: false };
    }) as TokenWait;
    wait.cancel = (reason?: unknown): void => this.#cancel(waiter, reason);
    this.#waiters.push(waiter);
    this.#live += 1;
    this.#serve();
    return wait;
  }

  /** Whether a live waiter goes before one of `priority` arriving now. */
  #ahead(priority: number): boolean {
    if (this.#live === 0) return false;
    const first = this.#first();
    return first !== undefined && first.priority >= priority;
  }

  /** The first live waiter, dropping cancelled ones. */
  #first(): Waiter | undefined {
    const waiters = this.#waiters;
    for (;;) {
      const head = waiters.peek();
      if (head === undefined || !head.settled) return head;
      waiters.shift();
    }
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updated) / this.#interval);
    this.#updated = now;
  }

  #cancel(waiter: Waiter, reason: unknown): void {
    if (waiter.settled) return;
    waiter.settled = true;
    this.#live -= 1;
    waiter.reject(reason);
    // Its place goes to the next waiter, which may be served now.
    this.#serve();
  }

  /** Serves every waiter the tokens allow, then arms the timer for the next one. */
  #serve(): void {
    const now = performance.now();
    this.#refill(now);
    let head = this.#first();
    while (head !== undefined && this.#tokens + EPSILON >= head.cost) {
      this.#tokens -= head.cost;
      this.#waiters.shift();
      this.#live -= 1;
      head.settled = true;
      head.resolve(now - head.start);
      head = this.#first();
    }
    const due = head === undefined ? Infinity : now + (head.cost - this.#tokens) * this.#interval;
    if (due === this.#timerDue) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = due;
    // Nobody waits: no timer may keep the process alive.
    if (due !== Infinity) this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(due - now)));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerDue = Infinity;
    this.#serve();
  };
}
