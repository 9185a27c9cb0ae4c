import { describe } from '../internal/assert.js';

/** Input of `map` and `mapIterable`: any Iterable or AsyncIterable. */
export type MapInput<T> = Iterable<T> | AsyncIterable<T>;

/** An opened input: its iterator, and whether it is synchronous. */
export type Source<T> =
  | { readonly sync: true; readonly iterator: Iterator<T> }
  | { readonly sync: false; readonly iterator: AsyncIterator<T> };

/**
 * Checks that `items` is an Iterable or an AsyncIterable, synchronously, so that a wrong argument
 * throws before anything else. Opening its iterator is left to the run ({@link open}). @internal
 */
export function assertIterable(items: unknown): void {
  const object = items as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null;
  if (
    object === null ||
    object === undefined ||
    (typeof object[Symbol.asyncIterator] !== 'function' &&
      typeof object[Symbol.iterator] !== 'function')
  ) {
    throw new TypeError(
      `\`items\` must be an Iterable or AsyncIterable, received ${describe(items)}`,
    );
  }
}

/** Opens the iterator of `items` (async first). */
export function open<T>(items: MapInput<T>): Source<T> {
  const asyncIterator = (items as AsyncIterable<T>)[Symbol.asyncIterator];
  if (typeof asyncIterator === 'function')
    return { sync: false, iterator: asyncIterator.call(items) };
  return { sync: true, iterator: (items as Iterable<T>)[Symbol.iterator]() };
}

/** Stops a source early; its own failure to stop is not the caller's concern. */
export function closeSource<T>(source: Source<T>): void {
  try {
    const result = source.iterator.return?.();
    if (result !== undefined && !source.sync)
      (result as Promise<unknown>).then(undefined, () => {});
  } catch {
    // A source whose return() throws has nothing left to release.
  }
}
