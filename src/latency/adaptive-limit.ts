// The adaptive concurrency limit as a pure unit: samples in (an attempt's latency, whether it
// failed from overload, how many attempts were in flight, the time it ended), limit out. It owns no
// timer and reads no clock, so a recorded series gives the same limits on every run; the engine
// feeds it and applies what it returns through the gate's concurrency setter.
//
// The algorithm is a gradient on a measured no-load floor, in the manner of Envoy's
// adaptive-concurrency filter (and of Netflix's concurrency-limits GradientLimit):
//
//   per window:  gradient = clamp(TOLERANCE * floor / low, MIN_GRADIENT, 1)
//                estimate = gradient * estimate + sqrt(estimate)
//   overload in the window:  estimate = estimate * BACKOFF
//   limit = round(estimate), within [min, max]
//
// - `low` is the lower decile (10th percentile) of the window's successful latencies. When the
//   client keeps more attempts in flight than the upstream serves at once (L > C), the excess waits
//   in the upstream's queue and the whole distribution moves up by about L / C, its lower decile
//   included, so gradient = C / L. Noise on a busy client (a loaded event loop, GC) only adds
//   latency, and mostly to the upper part: measured here on a loaded 2-core machine at no queueing,
//   the median was 1.4 x the minimum but the lower decile 1.05 x. The lower decile reads the queue
//   and little of the noise; a median or a mean would count the noise as queueing and sink.
// - `floor` is the smallest successful latency seen: an attempt that found a worker free. Even a
//   queued upstream frees a worker now and then (the client's own noise spaces its requests), and
//   the first attempts find it idle whatever the initial limit. Noise makes `low` a little higher
//   than `floor` at no load (1.05-1.2 x here), which TOLERANCE absorbs. The estimate settles where
//   L = TOLERANCE * C / noise + sqrt(L): 1.3-1.5 C at C = 8, 1.2-1.4 C at C = 16.
//   The sqrt(L) headroom
//   (Envoy's) keeps a small queue at the upstream, so that it never idles waiting for the client,
//   and is what makes the limit grow when latency stays at the floor (gradient 1): by sqrt(L) per
//   window, so a doubled capacity is found within a few windows.
// - Netflix's Vegas (its default) reaches a similar point (a queue of alpha..beta = 3..6 beyond C),
//   but its floor is reset by random probing that, under steady load, re-reads a queued latency as
//   the floor, and Gradient2 compares a short with a long average of latency, which under a steady
//   overload drifts up to the loaded value and lets latency creep; AIMD (Netflix's advice for
//   clients) only reacts to drops, which an upstream with a deep queue gives far too late. A
//   gradient on the minimum reacts to the queue as soon as it forms.
// - The floor can rise for good (a slower upstream, not more load): then every window reads as
//   queueing and the limit would sink. So every PROBE_INTERVAL ms one window runs at half the limit
//   (below the upstream's capacity whenever the estimate is below 2 C, which it is once settled):
//   its fastest success is taken as the new floor, and the estimate goes back to where it was. Envoy does
//   the same (every 60 s, at 3 in flight); half the limit costs less throughput than 3.
//
// Windows: a window closes on the first sample at least WINDOW_MS after it opened that finds at
// least MIN_SAMPLES samples in it (or an overload), so the limit changes at most 1000 / WINDOW_MS
// times a second and never per task; with little traffic a window waits for its samples.
// Overload samples carry no latency (a 503 returned at once says nothing of the queue); failures
// that are not overload are not samples at all. A window in which the attempts in flight never
// reached half the limit does not raise it (Netflix's app-limited rule): a caller that sends five
// at a time says nothing about whether fifty would queue.

/** Tuning of {@link AdaptiveLimit}, fixed by the engine; tests may change it. */
export interface AdaptiveTuning {
  /** A window is at least this long (ms). */
  readonly windowMs: number;
  /** A window without an overload needs at least this many successful samples. */
  readonly minSamples: number;
  /** A window whose lower decile is up to `tolerance` × floor counts as no queueing. */
  readonly tolerance: number;
  /** The gradient never cuts the estimate by more than this factor in one window. */
  readonly minGradient: number;
  /** The estimate is multiplied by this after a window with an overload. */
  readonly backoff: number;
  /** ms between probes of the floor (after the first one, which starts with the first window). */
  readonly probeInterval: number;
  /** Latencies kept per window for its lower decile (later ones only count). */
  readonly keep: number;
}

/**
 * The constants and why:
 * - windowMs 250: at most 4 changes a second (the contract says a few); at the benchmark's 400-800
 *   requests a second it is 100-200 samples, a stable lower decile.
 * - minSamples 10: the lower decile of fewer than 10 latencies is their minimum.
 * - tolerance 1.1: the lower decile of a busy client's latencies at no load is 1.05-1.2 x their
 *   minimum; without a tolerance that noise alone would cap the limit (at 1 / (1 - gradient)^2).
 *   A larger one moves the settled limit up by that factor: Netflix's 1.5 would settle near 2 C
 *   and double the time spent in the upstream's queue.
 * - minGradient 0.5: one window never more than halves the estimate from latency alone (Netflix's
 *   and Envoy's bound), so one slow window cannot collapse it.
 * - backoff 0.75: between Netflix AIMD's 0.9 and TCP Reno's 0.5; by default an overload is a
 *   timeout, which means latency already passed what the caller accepts, so the cut is firm.
 * - probeInterval 30 000: half of Envoy's 60 s; one window at half the limit every 30 s costs under
 *   1% of the throughput.
 * - keep 256: bounds a window's memory whatever the rate (its decile is that of its first 256).
 */
export const ADAPTIVE_TUNING: AdaptiveTuning = Object.freeze({
  windowMs: 250,
  minSamples: 10,
  tolerance: 1.1,
  minGradient: 0.5,
  backoff: 0.75,
  probeInterval: 30_000,
  keep: 256,
});

/** One attempt's outcome, as the limit sees it. */
export interface AdaptiveSample {
  /** The attempt's latency (ms); ignored on an overload. */
  readonly latency: number;
  /** The attempt failed from overload (`isOverload` said so). */
  readonly overload: boolean;
  /** Attempts in flight when it ended, itself included. */
  readonly inFlight: number;
  /** When it ended (ms, any monotonic clock). */
  readonly at: number;
}

/** Bounds of the limit: integers with 1 <= min <= initial <= max (validated by the options). */
export interface AdaptiveBounds {
  readonly min: number;
  readonly max: number;
  readonly initial: number;
}

/** The lower decile of `values` (sorted in place; not empty): the nearest-rank 10th percentile. */
function lowerDecile(values: number[]): number {
  values.sort((a, b) => a - b);
  return values[Math.ceil(values.length * 0.1) - 1]!;
}

/** A window of samples in progress. */
class Window {
  readonly start: number;
  readonly latencies: number[] = [];
  successes = 0;
  overloads = 0;
  least = Infinity;
  peakInFlight = 0;

  constructor(start: number) {
    this.start = start;
  }
}

/**
 * The limit: call {@link AdaptiveLimit.record} once per attempt that ended; it returns the new
 * limit when that sample closed a window that changed it.
 */
export class AdaptiveLimit {
  readonly #bounds: AdaptiveBounds;
  readonly #tuning: AdaptiveTuning;
  #estimate: number;
  #limit: number;
  #floor = Infinity;
  #window: Window | undefined;
  /** While probing: the estimate to return to. */
  #resumeAt: number | undefined;
  /** When the next probe of the floor is due (set once there is a floor). */
  #nextProbe = -Infinity;

  constructor(bounds: AdaptiveBounds, tuning: AdaptiveTuning = ADAPTIVE_TUNING) {
    this.#bounds = bounds;
    this.#tuning = tuning;
    this.#estimate = bounds.initial;
    this.#limit = bounds.initial;
  }

  /** The limit in force: an integer within [min, max]. */
  get limit(): number {
    return this.#limit;
  }

  /** The no-load latency measured so far (ms); `Infinity` before the first success. */
  get floor(): number {
    return this.#floor;
  }

  /** Records one attempt. Returns the new limit if this sample changed it, else `undefined`. */
  record(sample: AdaptiveSample): number | undefined {
    const window = (this.#window ??= new Window(sample.at));
    if (sample.overload) window.overloads += 1;
    else {
      window.successes += 1;
      if (window.latencies.length < this.#tuning.keep) window.latencies.push(sample.latency);
      if (sample.latency < window.least) window.least = sample.latency;
    }
    if (sample.inFlight > window.peakInFlight) window.peakInFlight = sample.inFlight;
    if (sample.at - window.start < this.#tuning.windowMs) return undefined;
    if (window.overloads === 0 && window.successes < this.#tuning.minSamples) return undefined;
    this.#window = undefined;
    return this.#close(window, sample.at);
  }

  #close(window: Window, at: number): number | undefined {
    const { tolerance, minGradient, backoff, probeInterval } = this.#tuning;
    const low = window.latencies.length > 0 ? lowerDecile(window.latencies) : undefined;
    const resumeAt = this.#resumeAt;
    const probed = resumeAt !== undefined;
    if (probed) {
      // The probe window, at half the limit: the upstream had room to spare.
      if (window.least !== Infinity) this.#floor = window.least;
      this.#estimate = resumeAt;
      this.#resumeAt = undefined;
      this.#nextProbe = at + probeInterval;
    } else if (window.least < this.#floor) {
      if (this.#floor === Infinity) this.#nextProbe = at + probeInterval;
      this.#floor = window.least;
    }

    // The window that ended a probe says nothing of the restored limit: only an overload counts.
    if (window.overloads > 0) this.#estimate *= backoff;
    else if (probed) return this.#apply();
    else if (this.#nextProbe <= at) {
      this.#resumeAt = this.#estimate;
      this.#estimate = Math.ceil(this.#estimate / 2);
    } else if (low !== undefined) {
      const gradient = Math.max(minGradient, Math.min(1, (tolerance * this.#floor) / low));
      const next = gradient * this.#estimate + Math.sqrt(this.#estimate);
      // App-limited: too few in flight to say whether more would queue.
      if (next < this.#estimate || window.peakInFlight * 2 >= this.#limit) this.#estimate = next;
    }
    return this.#apply();
  }

  /** Clamps the estimate; returns the new limit if it changed. */
  #apply(): number | undefined {
    const { min, max } = this.#bounds;
    this.#estimate = Math.min(max, Math.max(min, this.#estimate));
    const limit = Math.round(this.#estimate);
    if (limit === this.#limit) return undefined;
    this.#limit = limit;
    return limit;
  }
}
