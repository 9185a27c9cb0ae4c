// An instance's counters: counted on every task, observed or not. The bus owns the object; the
// execution increments its built-in keys directly, `incStat` adds custom ones.
import { assertString, describe } from '../internal/assert.js';

/** Counters, as returned by `stats()`: the built-in ones plus every `incStat` key. */
export interface Stats {
  /** Tasks that entered the instance. */
  queued: number;
  /** Attempts started. */
  started: number;
  /** Tasks that resolved. */
  done: number;
  /** Tasks that rejected with their own error or a timeout. */
  error: number;
  /** Retries scheduled. */
  retries: number;
  /** Attempts that waited for a rate-limit token. */
  throttled: number;
  /** Tasks cancelled. */
  cancelled: number;
  /** Tasks a full queue failed with `QueueFullError` (counted in `error` too). */
  shed: number;
  /** Tasks an open circuit failed with `CircuitOpenError` (counted in `error` too). */
  shortCircuited: number;
  /** Hedges sent: extra copies of an attempt started by the `hedge` option. */
  hedged: number;
  /** Custom counters from `incStat`. */
  [key: string]: number;
}

/** A counters object with every built-in key at 0. @internal */
export const createStats = (): Stats => ({
  queued: 0,
  started: 0,
  done: 0,
  error: 0,
  retries: 0,
  throttled: 0,
  cancelled: 0,
  shed: 0,
  shortCircuited: 0,
  hedged: 0,
});

/** The copy `stats()` returns: changing it changes nothing in `counters`. @internal */
export const copyStats = (counters: Readonly<Stats>): Stats => ({ ...counters });

/**
 * `incStat(key, count)`: validates both, then adds `count` to `counters[key]`, creating it at 0
 * first. @internal
 */
export function addStat(counters: Stats, key: string, count: number): void {
  assertString('key', key);
  if (typeof count !== 'number')
    throw new TypeError(`\`count\` must be a number, received ${describe(count)}`);
  if (!Number.isFinite(count))
    throw new RangeError(`\`count\` must be a finite number, received ${count}`);
  counters[key] = (counters[key] ?? 0) + count;
}
