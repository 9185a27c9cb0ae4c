/** Samples a {@link LatencyWindow} keeps by default: the most recent 512. */
export const WINDOW_SIZE = 512;

/**
 * How stale a {@link LatencyWindow}'s sorted copy may grow, per {@link WINDOW_SIZE} samples: it is
 * sorted again once `n * STALENESS / capacity` samples arrived since (`n` the samples held), so
 * 8 in 512 when full.
 */
export const STALENESS = 8;

/**
 * A quantile estimate over the most recent attempt latencies, in bounded memory: a ring of the
 * last `capacity` samples (two `Float64Array`s, 8 KiB at the default 512) and a sorted copy of it
 * made again after a few new samples, lazily, when a quantile is read.
 *
 * The error bound, in rank: with `n` samples held, the estimate of quantile `q` is a sample of the
 * window whose rank among the current `n` samples is within `n * staleness / capacity` (exclusive)
 * of the nearest rank `ceil(q * n)`. At the defaults that is under 1/64 of the window (8 of 512
 * samples), and the estimate is exact while fewer than `2 * capacity / staleness` (128) samples
 * are held. Each sorted copy costs one sort of at most `capacity` numbers, so about
 * `capacity / staleness` (64) new samples share the cost of one sort of 512.
 *
 * Why a window and not a sketch of everything (DDSketch, t-digest): a hedge delay must follow the
 * upstream as it is now, so old samples have to leave; a ring forgets them exactly, in order, and
 * its quantiles are the window's own samples rather than interpolations.
 *
 * Internal (the hedging of an instance reads it); `window.quantile(0.95)` after adding 1..100 is 95.
 */
export class LatencyWindow {
  readonly #ring: Float64Array;
  readonly #sorted: Float64Array;
  readonly #staleness: number;
  /** Samples held (at most the capacity). */
  #size = 0;
  /** Where the next sample goes in the ring. */
  #next = 0;
  /** Samples added since the sorted copy was made; -1 before the first copy. */
  #stale = -1;
  /** Samples in the sorted copy. */
  #sortedSize = 0;
  #measured = 0;

  /**
   * @param capacity - Most recent samples kept: an integer >= 1.
   * @param staleness - New samples per `capacity` that the sorted copy may lag behind: an integer
   * >= 1 and <= `capacity`; the rank error is under `n * staleness / capacity`.
   * @throws RangeError when either is out of range.
   */
  constructor(capacity: number = WINDOW_SIZE, staleness: number = STALENESS) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`\`capacity\` must be an integer >= 1, received ${capacity}`);
    }
    if (!Number.isInteger(staleness) || staleness < 1 || staleness > capacity) {
      throw new RangeError(
        `\`staleness\` must be an integer >= 1 and <= capacity (${capacity}), received ${staleness}`,
      );
    }
    this.#ring = new Float64Array(capacity);
    this.#sorted = new Float64Array(capacity);
    this.#staleness = staleness;
  }

  /** Samples held now (at most the capacity). */
  get size(): number {
    return this.#size;
  }

  /** Samples added since the window was made, including those it has since forgotten. */
  get measured(): number {
    return this.#measured;
  }

  /**
   * Adds one latency, in milliseconds; the oldest sample leaves once the window is full. A value
   * that is not a finite number >= 0 is ignored.
   */
  add(ms: number): void {
    if (!(ms >= 0 && ms !== Infinity)) return;
    const ring = this.#ring;
    ring[this.#next] = ms;
    this.#next = this.#next + 1 === ring.length ? 0 : this.#next + 1;
    if (this.#size < ring.length) this.#size += 1;
    this.#measured += 1;
    if (this.#stale >= 0) this.#stale += 1;
  }

  /**
   * The estimate of quantile `q` of the samples held (nearest rank, within the bound above).
   * @param q - A number in [0, 1]: `0.95` for the 95th percentile.
   * @returns A latency in milliseconds; `undefined` while the window is empty.
   */
  quantile(q: number): number | undefined {
    if (this.#size === 0) return undefined;
    const stale = this.#stale;
    if (
      stale < 0 ||
      stale >= Math.max(1, Math.floor((this.#sortedSize * this.#staleness) / this.#ring.length))
    ) {
      this.#sort();
    }
    const n = this.#sortedSize;
    const rank = Math.min(n, Math.max(1, Math.ceil(q * n)));
    return this.#sorted[rank - 1];
  }

  #sort(): void {
    const size = this.#size;
    this.#sorted.set(size === this.#ring.length ? this.#ring : this.#ring.subarray(0, size));
    // A typed array sorts numerically, in place, without a comparator call per pair.
    this.#sorted.subarray(0, size).sort();
    this.#sortedSize = size;
    this.#stale = 0;
  }
}
