// The rate of a run of starts, shared by the benchmarks and the tests that check a rate limit.

/**
 * Starts per second of `times` (start times in ms, sorted): the slope of start time against
 * start number by least squares, so that a start delayed by a busy event loop at either end
 * does not skew it as it would a first-to-last ratio.
 * @param {readonly number[]} times
 * @returns {number}
 */
export function startRate(times) {
  const mx = (times.length - 1) / 2;
  const my = times.reduce((a, b) => a + b, 0) / times.length;
  let sxy = 0;
  let sxx = 0;
  times.forEach((y, x) => {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  });
  return 1000 / (sxy / sxx);
}
