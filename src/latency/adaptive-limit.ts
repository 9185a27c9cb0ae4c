// The adaptive concurrency limit as a pure unit: samples in (an attempt's latency, whether it
// failed from overload, how many attempts were in flight, the time it ended), limit out. It owns no
// timer and reads no clock, so a recorded series gives the same limits on every run; the engine
// feeds it and applies what it returns through the gate's concurrency setter.
//
// The algorithm is a gradient on a measured no-load latency, in the manner of Envoy's
// adaptive-concurrency filter (and of Netflix's concurrency-limits GradientLimit):
//
//   per window:  gradient = clamp(TOLERANCE * reference / median, MIN_GRADIENT, 1)
//                estimate = gradient * estimate + sqrt(estimate)
//   overload in the window:  estimate = estimate * BACKOFF
//   limit = round(estimate), within [min, max]
//
// - `median` is the window's median successful latency. When the client keeps more attempts in
//   flight than the upstream serves at once (L > C), the excess waits in the upstream's queue and
//   the median moves up by about L / C, so gradient = C / L and the estimate settles where
//   L = TOLERANCE * C + sqrt(L). The median, not a lower percentile: a client that sends in bursts
//   (a busy event loop answers many responses at once, then sends many requests at once) lets some
//   requests find a short queue, so the low end of a window reads only part of the queue.
//   Measured against the benchmark's upstream (8 workers of 20 ms) at L = 15 on a loaded 2-core
//   machine: median 1.9 x the fastest success, as L / C says, but lower decile 1.4 x; a gradient
//   on the lower decile settled there, at 1.9 C, with p50 at 1.85 x that of L = C.
// - `reference` is the same statistic at no load: the lowest window median since the last probe
//   (a probe is a window at half the limit, below). Comparing a median with a median cancels the
//   client's own noise (event loop, GC), which lifts every window alike: on that loaded machine the
//   median at no queueing was 1.15-1.55 x the fastest success, which a comparison with the fastest
//   success would read as queueing, and sink. Until a probe measured it, the reference is at most
//   NOISE x the fastest success (`floor`), so a start far above the capacity (every window queued,
//   so no window median is a no-load one) still reads as queueing.
// - The sqrt(L) headroom (Envoy's) keeps a small queue at the upstream, so that it never idles
//   waiting for the client, and is what makes the limit grow when latency stays at the reference
//   (gradient 1): by sqrt(L) per window, so a doubled capacity is found within a few windows. It
//   settles the limit at about 1.4 C at C = 8 (p50 1.4 x the no-load one) and 1.3 C at C = 16.
// - Netflix's Vegas (its default) reaches a similar point (a queue of alpha..beta = 3..6 beyond C),
//   but its floor is reset by random probing that, under steady load, re-reads a queued latency as
//   the floor, and Gradient2 compares a short with a long average of latency, which under a steady
//   overload drifts up to the loaded value and lets latency creep; AIMD (Netflix's advice for
//   clients) only reacts to drops, which an upstream with a deep queue gives far too late. A
//   gradient on a no-load reference reacts to the queue as soon as it forms.
// - Probes. The reference can be too high (a start above the capacity: the first attempts open
//   connections, and a quiet client keeps the upstream's queue from ever emptying, so no later
//   window sees no load) or too low for good (a slower upstream, not more load: then every window
//   reads as queueing and the limit would sink). So one window runs at half the limit (below the
//   capacity whenever the estimate is below 2 C) and its median becomes the reference, its fastest
//   success the floor; then the estimate goes back to where it was. The first probe comes
//   PROBE_SOON after the first window, and again PROBE_SOON later while a probe lowers the
//   reference by more than PROBE_AGAIN (the one before was still queued); these early probes may
//   only lower the reference, since half of a limit still far above 2 C is queued too. Then one
//   every PROBE_INTERVAL, which may raise it. Envoy does the same (every 60 s, at 3 in flight, and
//   first at its start); half the limit costs less throughput than 3.
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
  /** A window whose median is up to `tolerance` × the reference counts as no queueing. */
  readonly tolerance: number;
  /** Until a probe measured it, the reference is at most `noise` × the fastest success. */
  readonly noise: number;
  /** The gradient never cuts the estimate by more than this factor in one window. */
  readonly minGradient: number;
  /** The estimate is multiplied by this after a window with an overload. */
  readonly backoff: number;
  /** ms from the first window to the first probe, and from a probe that lowered the reference to the next. */
  readonly probeSoon: number;
  /** A probe that lowered the reference by more than this factor is followed by another soon. */
  readonly probeAgain: number;
  /** ms between probes once the reference holds. */
  readonly probeInterval: number;
  /** Latencies kept per window for its median (later ones only count). */
  readonly keep: number;
}

/**
 * The constants and why:
 * - windowMs 250: at most 4 changes a second (the contract says a few); at the benchmark's 400-800
 *   requests a second it is 100-200 samples, a stable median.
 * - minSamples 10: the median of fewer than 10 latencies moves with every one of them.
 * - tolerance 1.0: the reference and the window's median are the same statistic of the same
 *   client, so no allowance for noise is needed; the reference is the lowest of many window
 *   medians, a few percent below a typical no-load one, which is slack enough. It sets the
 *   settled limit at C + sqrt(L): 1.4 C at C = 8, 1.3 C at C = 16 (1.05 gave 1.5 C and 1.35 C in
 *   the model of the upstream; Netflix's 1.5 would settle near 2 C, twice the no-load latency).
 * - noise 1.5: on a loaded 2-core machine the median at no queueing was measured at 1.15-1.55 x
 *   the fastest success; before the first probe the reference cannot be more than that, so a
 *   start at a limit far above the capacity (whose every window is queued) still reads as queueing.
 * - minGradient 0.5: one window never more than halves the estimate from latency alone (Netflix's
 *   and Envoy's bound), so one slow window cannot collapse it.
 * - backoff 0.75: between Netflix AIMD's 0.9 and TCP Reno's 0.5; by default an overload is a
 *   timeout, which means latency already passed what the caller accepts, so the cut is firm.
 * - probeSoon 1 000: the first probe comes 4 windows after the start, when the limit has come
 *   down from `initial` toward 2 C, so that half of it is at or below the capacity; while probes
 *   keep lowering the reference (the one before was still queued) they come again 1 s later.
 * - probeAgain 1.1: a probe that lowered the reference by 10% or more found the one before
 *   queued, and the one after may find less of a queue still; below that, the window-to-window
 *   spread of a median.
 * - probeInterval 30 000: half of Envoy's 60 s; one window at half the limit every 30 s costs under
 *   1% of the throughput.
 * - keep 256: bounds a window's memory whatever the rate (its median is that of its first 256).
 */
export const ADAPTIVE_TUNING: AdaptiveTuning = Object.freeze({
  windowMs: 250,
  minSamples: 10,
  tolerance: 1.0,
  noise: 1.5,
  minGradient: 0.5,
  backoff: 0.75,
  probeSoon: 1_000,
  probeAgain: 1.1,
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

/** The median of `values` (sorted in place; not empty): the nearest-rank 50th percentile. */
function median(values: number[]): number {
  values.sort((a, b) => a - b);
  return values[Math.ceil(values.length * 0.5) - 1]!;
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
  /** The lowest window median since the last probe (the probe's own, then any lower one). */
  #lowest = Infinity;
  #window: Window | undefined;
  /** While probing: the estimate to return to. */
  #resumeAt: number | undefined;
  /** When the next probe of the floor is due (set once there is a floor). */
  #nextProbe = -Infinity;
  /** The next probe is an early one, which may lower the floor and the reference but not raise them. */
  #early = true;

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

  /** The fastest success measured so far (ms); `Infinity` before the first success. */
  get floor(): number {
    return this.#floor;
  }

  /**
   * The no-load median latency the windows are compared with (ms): the lowest window median since
   * the last probe, at most `noise` × {@link AdaptiveLimit.floor}; `Infinity` before the first.
   */
  get reference(): number {
    return Math.min(this.#lowest, this.#tuning.noise * this.#floor);
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
    const { tolerance, minGradient, backoff, probeSoon, probeAgain, probeInterval } = this.#tuning;
    const mid = window.latencies.length > 0 ? median(window.latencies) : undefined;
    const resumeAt = this.#resumeAt;
    const probed = resumeAt !== undefined;
    if (probed) {
      // The probe window, at half the limit: the upstream had room to spare.
      // An early probe may still be queued (half of a limit above 2 C): it only lowers them.
      const before = this.reference;
      const least = this.#early ? Math.min(this.#floor, window.least) : window.least;
      if (least !== Infinity) this.#floor = least;
      if (mid !== undefined) this.#lowest = this.#early ? Math.min(this.#lowest, mid) : mid;
      // A probe that lowered the reference found the one before still queued: another soon.
      this.#early = this.reference * probeAgain < before;
      this.#estimate = resumeAt;
      this.#resumeAt = undefined;
      this.#nextProbe = at + (this.#early ? probeSoon : probeInterval);
    } else {
      if (window.least < this.#floor) {
        if (this.#floor === Infinity) this.#nextProbe = at + probeSoon;
        this.#floor = window.least;
      }
      if (mid !== undefined && mid < this.#lowest) this.#lowest = mid;
    }

    // The window that ended a probe says nothing of the restored limit: only an overload counts.
    if (window.overloads > 0) this.#estimate *= backoff;
    else if (probed) return this.#apply();
    else if (this.#nextProbe <= at) {
      this.#resumeAt = this.#estimate;
      this.#estimate = Math.ceil(this.#estimate / 2);
    } else if (mid !== undefined) {
      const gradient = Math.max(minGradient, Math.min(1, (tolerance * this.reference) / mid));
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
