import { AdaptiveLimit } from './adaptive-limit.js';
import type { ResolvedAdaptive } from './adaptive-options.js';

/**
 * Feeds an instance's attempts to its {@link AdaptiveLimit} and applies each new limit through
 * `apply` (the gate's concurrency setter, which emits `limit_changed`). The engine calls
 * `ended()` once per attempt that succeeded or failed in its slot.
 */
export class AdaptiveControl {
  readonly #limit: AdaptiveLimit;
  readonly #isOverload: (error: unknown) => boolean;
  readonly #inFlight: () => number;
  readonly #apply: (limit: number, previous: number) => void;

  constructor(
    options: ResolvedAdaptive,
    inFlight: () => number,
    apply: (limit: number, previous: number) => void,
  ) {
    this.#limit = new AdaptiveLimit(options);
    this.#isOverload = options.isOverload;
    this.#inFlight = inFlight;
    this.#apply = apply;
  }

  /**
   * An attempt that started at `startedAt` (`performance.now()`) ended: `ok`, or failed with
   * `error`. A failure that is not an overload is not a sample, nor is an attempt not timed.
   */
  ended(startedAt: number | undefined, ok: boolean, error: unknown): void {
    if (startedAt === undefined) return;
    let overload = false;
    if (!ok) {
      try {
        overload = this.#isOverload(error) === true;
      } catch {
        // Documented: a throwing isOverload counts as false (the task's own error still stands).
      }
      if (!overload) return;
    }
    const at = performance.now();
    const previous = this.#limit.limit;
    const limit = this.#limit.record({
      latency: at - startedAt,
      overload,
      inFlight: this.#inFlight(),
      at,
    });
    if (limit !== undefined) this.#apply(limit, previous);
  }
}
