// Types of bench/rate.mjs, for the TypeScript tests that import it.

/** Starts per second of `times` (sorted start times in ms), by least squares. */
export function startRate(times: readonly number[]): number;
