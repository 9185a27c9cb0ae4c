/** The ratio window is kept as this many buckets of `window / BUCKETS` ms each. */
const BUCKETS = 10;

/**
 * The ratio mode's sliding window of outcomes: calls and failures per bucket of `window / 10` ms
 * in a ring, with their totals. A bucket left behind as time moves on is emptied, so the totals
 * cover the last `window` ms (to one bucket's width).
 */
export class RatioWindow {
  readonly #origin: number;
  readonly #width: number;
  readonly #calls = new Float64Array(BUCKETS);
  readonly #fails = new Float64Array(BUCKETS);
  #bucket = 0;
  /** Outcomes in the window. */
  calls = 0;
  /** Failures in the window. */
  failures = 0;

  /** @param window - Its length in ms; `origin` the clock's reading at the start. */
  constructor(window: number, origin: number) {
    this.#origin = origin;
    this.#width = window / BUCKETS;
  }

  /** Counts one outcome at `now`. */
  add(failed: boolean, now: number): void {
    this.advance(now);
    const slot = this.#bucket % BUCKETS;
    this.#calls[slot] = (this.#calls[slot] ?? 0) + 1;
    this.calls += 1;
    if (failed) {
      this.#fails[slot] = (this.#fails[slot] ?? 0) + 1;
      this.failures += 1;
    }
  }

  /** Moves the window to the bucket of `now`, emptying the buckets it leaves behind. */
  advance(now: number): void {
    const bucket = Math.floor((now - this.#origin) / this.#width);
    const gap = bucket - this.#bucket;
    // Not later (or a clock that went back, or no number at all): the latest bucket goes on.
    if (!(gap > 0) || !Number.isFinite(bucket)) return;
    const calls = this.#calls;
    const fails = this.#fails;
    if (gap >= BUCKETS) this.clear();
    else {
      for (let step = 1; step <= gap; step++) {
        const slot = (this.#bucket + step) % BUCKETS;
        this.calls -= calls[slot] ?? 0;
        this.failures -= fails[slot] ?? 0;
        calls[slot] = fails[slot] = 0;
      }
    }
    this.#bucket = bucket;
  }

  /** Empties the window. */
  clear(): void {
    this.#calls.fill(0);
    this.#fails.fill(0);
    this.calls = this.failures = 0;
  }
}
