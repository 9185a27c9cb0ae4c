import {
  assertCount,
  assertFunction,
  assertNumber,
  assertObject,
  assertPositive,
  assertString,
  describe,
} from '../internal/assert.js';

/** What a task arriving at a full queue gets: see {@link QueueOptions.queueOverflow}. */
export type QueueOverflow = 'reject' | 'drop-oldest';

/** Limits applied to each key separately, on top of the instance's. */
export interface PerKeyOptions {
  /**
   * Most tasks of one key running at once: an integer >= 1, or `Infinity`.
   * @defaultValue `Infinity`
   */
  concurrency?: number | undefined;
  /** A token bucket per key, on the key's attempts; `burst` defaults to `perSecond`. */
  rateLimit?:
    | {
        /** Tokens added per second to each key's bucket; > 0. */
        perSecond: number;
        /**
         * Most tokens a key saves up; >= 1.
         * @defaultValue `perSecond`
         */
        burst?: number | undefined;
      }
    | undefined;
}

/** The queue options of `new Dovetail(options)`. */
export interface QueueOptions {
  /**
   * Most tasks waiting at once (for the gate, a token, a key or a pause): an integer >= 0, or
   * `Infinity`. `0` is a pure bulkhead: a task starts at once or fails with `QueueFullError`.
   * @defaultValue `Infinity`
   */
  maxQueue?: number | undefined;
  /**
   * What a task arriving at a full queue gets. `'reject'`: it fails with `QueueFullError`.
   * `'drop-oldest'`: the oldest waiting task of the lowest priority fails instead, if its
   * priority is <= the new task's; otherwise the new one fails.
   * @defaultValue `'reject'`
   */
  queueOverflow?: QueueOverflow | undefined;
  /**
   * Limits per key (a task's `key`, from `with({ key })` or the `key` map option), on top of the
   * instance's. A task waiting for its key holds no instance slot.
   * @defaultValue none: a key only labels its task
   */
  perKey?: PerKeyOptions | undefined;
}

/** A bucket's rate and size after validation. */
export interface ResolvedRate {
  readonly perSecond: number;
  readonly burst: number;
}

/** The queue options after validation. */
export interface ResolvedQueueOptions {
  readonly maxQueue: number;
  readonly queueOverflow: QueueOverflow;
  readonly perKey:
    { readonly concurrency: number; readonly rateLimit: ResolvedRate | undefined } | undefined;
}

const OVERFLOWS: readonly string[] = ['reject', 'drop-oldest'];

/** `{ perSecond, burst? }`, validated under `name`. */
export function resolveRate(name: string, rate: unknown): ResolvedRate {
  assertObject(name, rate);
  const { perSecond, burst } = rate as { perSecond?: unknown; burst?: unknown };
  assertPositive(`${name}.perSecond`, perSecond);
  if (perSecond === Infinity) {
    throw new RangeError(`\`${name}.perSecond\` must be finite, received Infinity`);
  }
  if (burst !== undefined) {
    assertPositive(`${name}.burst`, burst);
    if (!(burst >= 1) || burst === Infinity) {
      throw new RangeError(`\`${name}.burst\` must be a finite number >= 1, received ${burst}`);
    }
  }
  return Object.freeze({ perSecond, burst: Math.max(1, burst ?? perSecond) });
}

/** Validates the queue options of the constructor. */
export function resolveQueueOptions(options: QueueOptions): ResolvedQueueOptions {
  const { maxQueue, queueOverflow, perKey } = options;
  if (maxQueue !== undefined) {
    assertNumber('maxQueue', maxQueue);
    if (!(maxQueue >= 0) || (!Number.isInteger(maxQueue) && maxQueue !== Infinity)) {
      throw new RangeError(
        `\`maxQueue\` must be an integer >= 0 or Infinity, received ${maxQueue}`,
      );
    }
  }
  if (queueOverflow !== undefined) assertChoice('queueOverflow', queueOverflow, OVERFLOWS);
  let keyed: ResolvedQueueOptions['perKey'];
  if (perKey !== undefined) {
    assertObject('perKey', perKey);
    if (perKey.concurrency !== undefined) assertCount('perKey.concurrency', perKey.concurrency);
    keyed = Object.freeze({
      concurrency: perKey.concurrency ?? Infinity,
      rateLimit:
        perKey.rateLimit === undefined
          ? undefined
          : resolveRate('perKey.rateLimit', perKey.rateLimit),
    });
  }
  return {
    maxQueue: maxQueue ?? Infinity,
    queueOverflow: queueOverflow ?? 'reject',
    perKey: keyed,
  };
}

/** One of the listed strings: TypeError for a non-string, RangeError for another string. */
export function assertChoice(name: string, value: unknown, choices: readonly string[]): void {
  assertString(name, value);
  if (!choices.includes(value)) {
    const listed = choices.map((choice) => `'${choice}'`).join(', ');
    throw new RangeError(`\`${name}\` must be one of ${listed}, received ${describe(value)}`);
  }
}

/** What the instance's buckets allow a task's `cost` to be. */
export interface CostLimits {
  /** The instance bucket's `burst`, when it has one (in this process or shared). */
  readonly burst: number | undefined;
  /** The per-key bucket's `burst`, when keys have one. */
  readonly keyBurst: number | undefined;
}

/** The queue fields of a task's policy. */
export interface TaskQueueFields {
  readonly priority: number;
  readonly key: string | undefined;
  readonly cost: number;
}

/** Validates `priority`, `key` (a string; `map` checks its function form) and `cost`. */
export function resolveTaskQueue(
  base: TaskQueueFields,
  fields: { priority?: unknown; key?: unknown; cost?: unknown },
  limits: CostLimits,
  keyMayBeFunction: boolean,
): TaskQueueFields & { readonly keyOf: ((item: never, index: number) => string) | undefined } {
  const { priority, key, cost } = fields;
  if (priority !== undefined) {
    assertNumber('priority', priority);
    if (!Number.isFinite(priority)) {
      throw new RangeError(`\`priority\` must be a finite number, received ${priority}`);
    }
  }
  let keyOf: ((item: never, index: number) => string) | undefined;
  if (key !== undefined) {
    if (keyMayBeFunction && typeof key === 'function') {
      assertFunction('key', key);
      keyOf = key as (item: never, index: number) => string;
    } else assertString('key', key);
  }
  if (cost !== undefined) {
    assertPositive('cost', cost);
    if (cost === Infinity) throw new RangeError('`cost` must be finite, received Infinity');
  }
  const finalKey = keyOf === undefined ? ((key as string | undefined) ?? base.key) : undefined;
  const finalCost = cost ?? base.cost;
  // Checked whenever the cost or the key changes: a key brings its bucket's burst with it.
  if (cost !== undefined || key !== undefined) {
    const keyed = finalKey !== undefined || keyOf !== undefined;
    for (const [name, burst] of [
      ['rateLimit.burst', limits.burst],
      ['perKey.rateLimit.burst', keyed ? limits.keyBurst : undefined],
    ] as const) {
      if (burst !== undefined && finalCost > burst) {
        throw new RangeError(`\`cost\` must be <= \`${name}\` (${burst}), received ${finalCost}`);
      }
    }
  }
  return { priority: priority ?? base.priority, key: finalKey, cost: finalCost, keyOf };
}
