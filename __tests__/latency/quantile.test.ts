import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LatencyWindow, STALENESS, WINDOW_SIZE } from '../../src/latency/quantile.js';

const QUANTILES = [0, 0.01, 0.5, 0.9, 0.95, 0.99, 1];

/**
 * A uniform, repeatable series in [0, 1): the Weyl sequence frac(i * step + offset), with an
 * irrational step (a different one per series, so that two series are not correlated).
 */
const weyl = (length: number, step: number, offset = 0): number[] =>
  Array.from({ length }, (_, i) => (i * step + offset) % 1);

/**
 * How far `value` is, in rank, from being the nearest-rank quantile `q` of `window` (0 when it is
 * exactly that): the nearest rank r = ceil(q n) holds `value` when fewer than r samples are below
 * it and at least r are at or below it.
 */
function rankError(window: readonly number[], q: number, value: number): number {
  const n = window.length;
  const rank = Math.min(n, Math.max(1, Math.ceil(q * n)));
  let below = 0;
  let atOrBelow = 0;
  for (const x of window) {
    if (x < value) below += 1;
    if (x <= value) atOrBelow += 1;
  }
  if (below >= rank) return below - rank + 1;
  if (atOrBelow < rank) return rank - atOrBelow;
  return 0;
}

/**
 * Feeds `series` to a window, reading every quantile after each sample, and returns the worst
 * rank error seen, as a share of the samples held, next to the bound the module states.
 */
function worst(series: readonly number[], capacity = WINDOW_SIZE, staleness = STALENESS) {
  const estimate = new LatencyWindow(capacity, staleness);
  const held: number[] = [];
  let share = 0;
  let exceeded = 0;
  series.forEach((x) => {
    estimate.add(x);
    held.push(x);
    if (held.length > capacity) held.shift();
    for (const q of QUANTILES) {
      const value = estimate.quantile(q) as number;
      const error = rankError(held, q, value);
      share = Math.max(share, error / held.length);
      // The stated bound: strictly under n * staleness / capacity ranks.
      if (error > 0 && error >= (held.length * staleness) / capacity) exceeded += 1;
    }
  });
  return { share, exceeded, estimate };
}

describe('LatencyWindow', () => {
  it('is empty until a sample arrives', () => {
    const estimate = new LatencyWindow();
    expect(estimate.quantile(0.5)).toBeUndefined();
    expect(estimate.size).toBe(0);
    expect(estimate.measured).toBe(0);
  });

  it('gives the nearest-rank quantiles of a short series exactly', () => {
    const estimate = new LatencyWindow();
    for (let i = 100; i >= 1; i--) estimate.add(i);
    expect(estimate.quantile(0.5)).toBe(50);
    expect(estimate.quantile(0.95)).toBe(95);
    expect(estimate.quantile(0.99)).toBe(99);
    expect(estimate.quantile(1)).toBe(100);
    expect(estimate.quantile(0)).toBe(1);
  });

  it('is exact while it holds fewer than 2 * capacity / staleness samples', () => {
    const short = weyl((2 * WINDOW_SIZE) / STALENESS - 1, Math.SQRT2).map((u) => u * 100);
    expect(worst(short).share).toBe(0);
  });

  it('stays within its rank bound on a uniform series', () => {
    const uniform = weyl(3000, Math.SQRT2).map((u) => 5 + u * 20);
    const { share, exceeded } = worst(uniform);
    expect(exceeded).toBe(0);
    expect(share).toBeLessThan(STALENESS / WINDOW_SIZE);
  });

  it('stays within its rank bound on a skewed series (10 ms, 3% at 200 ms)', () => {
    const jitter = weyl(3000, Math.SQRT2);
    const skewed = weyl(3000, (1 + Math.sqrt(5)) / 2).map((p, i) =>
      p < 0.03 ? 200 + 5 * (jitter[i] as number) : 10 + (jitter[i] as number),
    );
    const { share, exceeded, estimate } = worst(skewed);
    expect(exceeded).toBe(0);
    expect(share).toBeLessThan(STALENESS / WINDOW_SIZE);
    // The tail is above p95 and at p99.
    expect(estimate.quantile(0.95)).toBeLessThan(12);
    expect(estimate.quantile(0.99)).toBeGreaterThanOrEqual(200);
  });

  it('stays within its rank bound on a heavy-tailed (Pareto) series', () => {
    const uniform = weyl(3000, Math.sqrt(3), 0.5);
    const { exceeded } = worst(uniform.map((u) => 2 / Math.pow(1 - u, 1 / 1.2)));
    expect(exceeded).toBe(0);
  });

  it('follows a step: after a full window only the new level remains', () => {
    const estimate = new LatencyWindow(64, 4);
    for (let i = 0; i < 64; i++) estimate.add(10);
    expect(estimate.quantile(0.5)).toBe(10);
    for (let i = 0; i < 64; i++) estimate.add(50);
    expect(estimate.quantile(0)).toBe(50);
    expect(estimate.size).toBe(64);
    expect(estimate.measured).toBe(128);
  });

  it('stays within its rank bound on any series and window shape (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 64 }),
        (series, capacity, s) => {
          const staleness = Math.min(s, capacity);
          expect(worst(series, capacity, staleness).exceeded).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('ignores a sample that is not a finite number >= 0', () => {
    const estimate = new LatencyWindow();
    estimate.add(Number.NaN);
    estimate.add(-1);
    estimate.add(Infinity);
    expect(estimate.size).toBe(0);
    estimate.add(3);
    expect(estimate.quantile(0.5)).toBe(3);
  });

  it('rejects a capacity or staleness out of range', () => {
    expect(() => new LatencyWindow(0)).toThrow(RangeError);
    expect(() => new LatencyWindow(1.5)).toThrow('`capacity`');
    expect(() => new LatencyWindow(8, 0)).toThrow('`staleness`');
    expect(() => new LatencyWindow(8, 9)).toThrow(RangeError);
  });
});
