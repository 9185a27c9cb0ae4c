// The `onProgress` option of `map` and `mapIterable`: counts kept only when the option is given,
// so that a run without it pays one field check per settled item and nothing else.
import type { Events } from '../events/bus.js';
import { isThenable } from '../internal/util.js';

/**
 * What `onProgress` receives after each item of a `map` or `mapIterable` settles.
 *
 * @example
 * ```ts
 * import { Dovetail, type MapProgress } from 'dovetailjs';
 * const dvt = new Dovetail({ concurrency: 2 });
 * const seen: MapProgress[] = [];
 * await dvt.task.map(async (n: number) => n * 2, [1, 2, 3], { onProgress: (p) => seen.push(p) });
 * console.log(seen.at(-1)); // prints: { done: 3, failed: 0, running: 0, total: 3 }
 * ```
 */
export interface MapProgress {
  /** Items that succeeded so far. */
  done: number;
  /** Items that failed so far: kept (`returnErrors`) or fatal (the map then fails). */
  failed: number;
  /**
   * Items the call submitted that have not settled yet, the one just settled not among them:
   * running, or waiting for the instance (its gate, a token, a key or a pause) when the call's
   * own `concurrency` is above what the instance lets run.
   */
  running: number;
  /**
   * The input's length when it has one (an array, anything with a numeric `length` or `size`,
   * read once when the run starts), else `undefined`.
   */
  total: number | undefined;
}

/**
 * The `onProgress` callback of `map` / `mapIterable`.
 *
 * @example
 * ```ts
 * import { Dovetail, type ProgressCallback } from 'dovetailjs';
 * const dvt = new Dovetail({ concurrency: 4 });
 * const log: ProgressCallback = ({ done, failed, total }) =>
 *   console.log(`${done + failed}/${total ?? '?'} settled, ${failed} failed`);
 * await dvt.task.map(async (n: number) => n, [1, 2, 3], { onProgress: log });
 * ```
 */
export type ProgressCallback = (progress: MapProgress) => void;

/** The input's length, when it tells one: a numeric `length` (arrays) or `size` (Set, Map). */
export function totalOf(items: unknown): number | undefined {
  const sized = items as { length?: unknown; size?: unknown };
  try {
    const { length } = sized;
    if (typeof length === 'number') return length;
    const { size } = sized;
    if (typeof size === 'number') return size;
  } catch {
    // A getter that throws tells no length; the map itself goes on.
  }
  return undefined;
}

/** The event name a failing `onProgress` is reported under (as a listener error is). */
const NAME = 'onProgress';

/** The counts of one run and its callback; made only for a run that has `onProgress`. */
export class Progress {
  #done = 0;
  #failed = 0;
  readonly #callback: ProgressCallback;
  readonly #total: number | undefined;
  readonly #events: Events;

  constructor(callback: ProgressCallback, items: unknown, events: Events) {
    this.#callback = callback;
    this.#total = totalOf(items);
    this.#events = events;
  }

  /**
   * An item settled (`ok`: it succeeded); `running` items remain. The callback's throw or
   * rejection is reported like a listener's and never reaches the run.
   */
  report(ok: boolean, running: number): void {
    if (ok) this.#done += 1;
    else this.#failed += 1;
    const progress: MapProgress = {
      done: this.#done,
      failed: this.#failed,
      running,
      total: this.#total,
    };
    try {
      const result: unknown = this.#callback(progress);
      if (isThenable(result)) {
        result.then(undefined, (error: unknown) => this.#events.reportListenerError(NAME, error));
      }
    } catch (error) {
      this.#events.reportListenerError(NAME, error);
    }
  }
}
