// Small helpers shared across modules; never exported from the package.

/** Does nothing: a handler for promises whose outcome is observed elsewhere or not at all. */
export const noop = (): void => {};

/** Whether `value` has a callable `then` (a promise or any foreign thenable). */
export const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === 'object' || typeof value === 'function') &&
  typeof (value as PromiseLike<unknown>).then === 'function';

/**
 * `process.emitWarning(message, { code, detail })` that never throws: it can under
 * `--throw-deprecation`-like flags, and a report (from a listener guard, a finalizer, a signal
 * handler) must never break what it reports on.
 */
export function warn(message: string, code: string, detail?: string): void {
  try {
    process.emitWarning(message, { code, detail });
  } catch {
    // Nothing to do: the warning itself could not be shown.
  }
}

/** `Name: message` for an Error, `String(value)` for anything else. */
export const errorText = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);

/**
 * An object or array as JSON, or its `[object Tag]` when JSON cannot show it (circular, holding a
 * BigInt, or a `toJSON` that returns undefined).
 */
export function objectText(value: object): string {
  try {
    return JSON.stringify(value) ?? Object.prototype.toString.call(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
