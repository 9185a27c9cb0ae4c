// The adaptive limit as a pure unit (src/latency/adaptive-limit.ts): synthetic series from a model
// of the benchmark's upstream (__tests__/helpers/upstream-model.ts), direct series, and a series
// recorded from the real upstream (__tests__/fixtures/adaptive-series.json).
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import {
  ADAPTIVE_TUNING,
  AdaptiveLimit,
  type AdaptiveSample,
} from '../../src/latency/adaptive-limit.js';
import { runModel, type ModelResult } from '../helpers/upstream-model.js';

/** Service times of 17-23 ms: a 20 ms worker seen through a real client. */
const service = (draw: number) => 17 + 6 * draw;

/** Most limit changes in any one-second span of [0, end). */
function peakChangesPerSecond(result: ModelResult, end: number): number {
  let peak = 0;
  for (let from = 0; from < end; from += 250) {
    const n = result.limits.filter(([t]) => t > 0 && t >= from && t < from + 1000).length;
    peak = Math.max(peak, n);
  }
  return peak;
}

/** Feeds `samples` in order; returns the limit after each one. */
function replay(limit: AdaptiveLimit, samples: AdaptiveSample[]): number[] {
  return samples.map((sample) => {
    limit.record(sample);
    return limit.limit;
  });
}

/** `count` successes of `latency` ms, `every` ms apart from `from`, `inFlight` in flight. */
function series(
  count: number,
  from: number,
  every: number,
  latency: (i: number) => number,
  inFlight = 20,
) {
  return Array.from({ length: count }, (_, i) => ({
    latency: latency(i),
    overload: false,
    inFlight,
    at: from + i * every,
  }));
}

describe('AdaptiveLimit on a steady upstream', () => {
  const result = runModel({ phases: [{ until: 20_000, capacity: 8, service }] });

  it('settles between C and 2C', () => {
    const mean = result.meanLimit(5_000, 20_000);
    expect(mean).toBeGreaterThanOrEqual(8);
    expect(mean).toBeLessThanOrEqual(16);
    for (let t = 5_000; t < 20_000; t += 100) {
      expect(result.limitAt(t)).toBeGreaterThanOrEqual(8);
      expect(result.limitAt(t)).toBeLessThanOrEqual(16);
    }
  });

  it('changes at most 4 times a second, never per task', () => {
    expect(peakChangesPerSecond(result, 20_000)).toBeLessThanOrEqual(4);
    // 20 s at about 400 requests a second: thousands of samples, a few dozen changes.
    expect(result.phases[0]!.served).toBeGreaterThan(7_000);
    expect(result.limits.length).toBeLessThan(80);
  });

  it('keeps the upstream busy and its queue short', () => {
    const [phase] = result.phases;
    // 8 workers of 20 ms: 400 a second at most.
    expect(phase!.served / 20).toBeGreaterThan(0.95 * 400);
    expect(phase!.rejected).toBe(0);
    // Alone, 20 ms; at 2C in flight, 40 ms.
    expect(phase!.p50).toBeLessThan(1.6 * 20);
  });

  it('finds the no-load latency by probing when the first attempts were slow', () => {
    // The first 20 attempts (one per connection) take 10 ms more, and no later one finds the
    // upstream idle while the limit stays above 8: only the probes measure the no-load latency.
    const cold = runModel({
      phases: [{ until: 10_000, capacity: 8, service }],
      coldStart: { count: 20, extra: 10 },
    });
    const mean = cold.meanLimit(3_000, 10_000);
    expect(mean).toBeGreaterThanOrEqual(8);
    expect(mean).toBeLessThanOrEqual(13);
    expect(cold.phases[0]!.served / 10).toBeGreaterThan(0.95 * 400);
  });

  it('holds with client noise of up to 16 ms on every latency', () => {
    const noisy = runModel({
      phases: [{ until: 20_000, capacity: 8, service }],
      overhead: (draw) => 16 * draw,
    });
    const mean = noisy.meanLimit(5_000, 20_000);
    expect(mean).toBeGreaterThanOrEqual(8);
    expect(mean).toBeLessThanOrEqual(16);
  });
});

describe('AdaptiveLimit through a capacity step', () => {
  const result = runModel({
    phases: [
      { until: 10_000, capacity: 8, service },
      { until: 20_000, capacity: 16, service },
      { until: 30_000, capacity: 8, service },
    ],
  });

  it('rises to meet doubled capacity within 2 s and settles between C and 2C', () => {
    expect(result.limitAt(12_000)).toBeGreaterThanOrEqual(16);
    const mean = result.meanLimit(12_000, 20_000);
    expect(mean).toBeGreaterThanOrEqual(16);
    expect(mean).toBeLessThanOrEqual(32);
  });

  it('falls when capacity halves again, within 2 s', () => {
    expect(result.limitAt(22_000)).toBeLessThanOrEqual(16);
    const mean = result.meanLimit(22_000, 30_000);
    expect(mean).toBeGreaterThanOrEqual(8);
    expect(mean).toBeLessThanOrEqual(16);
  });

  it('serves at least 90% of what each capacity allows', () => {
    expect(result.phases[0]!.served / 10).toBeGreaterThan(0.9 * 400);
    expect(result.phases[1]!.served / 10).toBeGreaterThan(0.9 * 800);
    expect(result.phases[2]!.served / 10).toBeGreaterThan(0.9 * 400);
  });
});

describe('AdaptiveLimit on rising latency', () => {
  it('falls while latency rises with the load, to where the halving bound meets the headroom', () => {
    // No probe within these 6 s: the gradient alone.
    const limit = new AdaptiveLimit(
      { min: 2, max: 100, initial: 40 },
      { ...ADAPTIVE_TUNING, probeSoon: 60_000 },
    );
    // The first window finds 20 ms; then latency climbs 0.5 ms a sample, all in the queue.
    const limits = replay(
      limit,
      series(600, 0, 10, (i) => 20 + 0.5 * i, 40),
    );
    expect(limit.floor).toBe(20);
    // A gradient of at most 1/2 a window against sqrt(L) of headroom: L = L / 2 + sqrt(L) at 4.
    expect(limits[limits.length - 1]).toBe(4);
    // The first window's median is the reference (below 1.5 x the floor).
    expect(limit.reference).toBeLessThan(30);
    // Up while latency is within the tolerance of the reference, then down all the way.
    const peak = limits.indexOf(Math.max(...limits));
    for (let i = peak + 1; i < limits.length; i += 1)
      expect(limits[i]).toBeLessThanOrEqual(limits[i - 1]!);
  });

  it('finds a floor that rose for good at the next probe, and comes back up', () => {
    // The upstream gets twice as slow for every request (not from load): 20 ms, then 40 ms.
    const result = runModel({
      phases: [
        { until: 10_000, capacity: 8, service },
        { until: 70_000, capacity: 8, service: (draw) => 2 * service(draw) },
      ],
    });
    // Before the probe it reads as queueing; after the probe at 30 s it is the new floor.
    expect(result.meanLimit(20_000, 30_000)).toBeLessThan(8);
    const mean = result.meanLimit(40_000, 70_000);
    expect(mean).toBeGreaterThanOrEqual(8);
    expect(mean).toBeLessThanOrEqual(16);
  });

  it('probes at half the limit for one window 1 s after the first, then every 30 s', () => {
    const limit = new AdaptiveLimit({ min: 1, max: 100, initial: 20 });
    const seen = replay(
      limit,
      series(4_000, 0, 10, () => 20, 20),
    );
    // Steady at the floor, 20 in flight: grows only while the in-flight count keeps up.
    const dips = seen.flatMap((l, i) => (i > 0 && l < seen[i - 1]! / 1.5 ? [i] : []));
    expect(dips).toHaveLength(2);
    const [early, later] = dips as [number, number];
    // The first floor at about 250 ms, the first probe 1 s later; it found the same floor, so
    // the next is 30 s after it.
    expect(early * 10).toBeGreaterThanOrEqual(1_250);
    expect(early * 10).toBeLessThan(1_750);
    expect(later * 10).toBeGreaterThanOrEqual(early * 10 + 30_000);
    expect(later * 10).toBeLessThan(early * 10 + 30_750);
    for (const dip of dips) {
      expect(seen[dip]).toBe(Math.ceil(seen[dip - 1]! / 2));
      // One window (25 samples) later the limit is back where it was.
      expect(seen[dip + 40]).toBe(seen[dip - 1]);
    }
    expect(limit.reference).toBe(20);
  });

  it('probes again 1 s later while probes keep lowering the reference', () => {
    // Far above the capacity at the start: the first windows are all queued, the probes at half
    // the limit find less and less of a queue.
    const result = runModel({
      phases: [{ until: 10_000, capacity: 4, service }],
      initial: 60,
    });
    const probes = result.limits.filter(
      ([, l], i) => i > 0 && l <= Math.ceil(result.limits[i - 1]![1] / 2),
    );
    expect(probes.length).toBeGreaterThanOrEqual(1);
    const mean = result.meanLimit(5_000, 10_000);
    expect(mean).toBeGreaterThanOrEqual(4);
    expect(mean).toBeLessThanOrEqual(8);
  });
});

describe('AdaptiveLimit on overload', () => {
  it('falls multiplicatively once per window with an overload, never below min', () => {
    const limit = new AdaptiveLimit({ min: 3, max: 100, initial: 64 });
    limit.record({ latency: 20, overload: false, inFlight: 64, at: 0 });
    const changes: number[] = [];
    // An overload every 130 ms: two or three in each window, which count once.
    for (let at = 130; at < 10_000; at += 130) {
      const changed = limit.record({ latency: 0, overload: true, inFlight: 64, at });
      if (changed !== undefined) changes.push(changed);
    }
    expect(changes).toEqual([48, 36, 27, 20, 15, 11, 9, 6, 5, 4, 3]);
    expect(limit.limit).toBe(3);
  });

  it('sheds an overload burst and recovers after it', () => {
    const result = runModel({
      phases: [
        { until: 5_000, capacity: 16, service },
        // An outage: every request takes 400 ms, the client's timeout is 200 ms.
        { until: 7_000, capacity: 16, service: 400 },
        { until: 15_000, capacity: 16, service },
      ],
      timeout: 200,
    });
    expect(result.phases[1]!.timeouts).toBeGreaterThan(0);
    expect(
      Math.min(...result.limits.filter(([t]) => t >= 5_000 && t < 7_500).map(([, l]) => l)),
    ).toBeLessThan(8);
    const mean = result.meanLimit(10_000, 15_000);
    expect(mean).toBeGreaterThanOrEqual(16);
    expect(mean).toBeLessThanOrEqual(32);
  });

  it('backs off on 503s from a queue limit', () => {
    const result = runModel({
      phases: [{ until: 5_000, capacity: 8, service }],
      initial: 200,
      max: 1000,
      queueLimit: 64,
    });
    expect(result.phases[0]!.rejected).toBeGreaterThan(0);
    expect(result.limitAt(4_000)).toBeLessThanOrEqual(16);
  });
});

describe('AdaptiveLimit bounds and windows', () => {
  it('never leaves [min, max]', () => {
    const result = runModel({
      phases: [
        { until: 10_000, capacity: 64, service },
        { until: 20_000, capacity: 2, service },
      ],
      min: 4,
      max: 24,
    });
    const limits = result.limits.map(([, l]) => l);
    expect(Math.max(...limits)).toBe(24);
    expect(Math.min(...limits)).toBe(4);
  });

  it('does not grow while the caller keeps fewer than half the limit in flight', () => {
    const result = runModel({ phases: [{ until: 20_000, capacity: 64, service, demand: 5 }] });
    expect(Math.max(...result.limits.map(([, l]) => l))).toBe(20);
  });

  it('waits for minSamples successes before closing a window', () => {
    const limit = new AdaptiveLimit({ min: 1, max: 100, initial: 20 });
    const few = series(9, 0, 1_000, () => 20);
    expect(few.map((s) => limit.record(s))).toEqual(Array.from({ length: 9 }, () => undefined));
    expect(limit.floor).toBe(Infinity);
    limit.record({ latency: 20, overload: false, inFlight: 20, at: 9_000 });
    expect(limit.floor).toBe(20);
  });

  it('keeps at most `keep` latencies per window', () => {
    const limit = new AdaptiveLimit(
      { min: 1, max: 100, initial: 20 },
      { ...ADAPTIVE_TUNING, keep: 16 },
    );
    // The first window sets the floor; in the second the first 16 are slow, the rest fast.
    replay(
      limit,
      series(14, 0, 20, () => 20),
    );
    expect(limit.floor).toBe(20);
    replay(
      limit,
      series(400, 1_000, 1, (i) => (i < 16 ? 80 : 20)),
    );
    expect(limit.limit).toBeLessThan(20);
  });
});

describe('AdaptiveLimit on a series recorded from the real upstream', () => {
  // 12 in flight against 8 workers of 20 ms, then (capacityStep) against 16.
  const recorded = JSON.parse(
    readFileSync(new URL('../fixtures/adaptive-series.json', import.meta.url), 'utf8'),
  ) as { capacityStep: number; concurrency: number; samples: [number, number, number][] };
  const samples = recorded.samples.map(([latency, inFlight, at]) => ({
    latency,
    overload: false,
    inFlight,
    at,
  }));

  it('gives the same limits on every replay', () => {
    const a = replay(new AdaptiveLimit({ min: 1, max: 1000, initial: 20 }), samples);
    const b = replay(new AdaptiveLimit({ min: 1, max: 1000, initial: 20 }), samples);
    expect(a).toEqual(b);
  });

  // Recorded on a loaded 2-core machine: client noise dominates (the client reached half the
  // upstream's capacity), so the checks are the rules the limit follows on any series.
  it('stays in bounds, changes at most 4 times a second, never grows while app-limited', () => {
    const limit = new AdaptiveLimit({ min: 1, max: 1000, initial: 20 });
    const changes: [number, number, number][] = [];
    let previous = limit.limit;
    let peak = 0;
    for (const sample of samples) {
      peak = Math.max(peak, sample.inFlight);
      const changed = limit.record(sample);
      if (changed === undefined) continue;
      changes.push([sample.at, previous, changed]);
      // A rise needs the window's peak in flight at half the limit or more.
      if (changed > previous) expect(peak * 2).toBeGreaterThanOrEqual(previous);
      previous = changed;
      peak = 0;
    }
    expect(changes.length).toBeGreaterThan(3);
    for (const [at] of changes) {
      expect(changes.filter(([t]) => t >= at && t < at + 1_000).length).toBeLessThanOrEqual(4);
    }
    // 12 in flight throughout: past 24 it is app-limited.
    expect(Math.max(...changes.map(([, , l]) => l))).toBeLessThanOrEqual(24 + Math.sqrt(24) + 1);
    expect(limit.floor).toBeGreaterThan(19);
    expect(limit.floor).toBeLessThan(30);
  });
});
