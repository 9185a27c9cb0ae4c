import type { ClearablePromise } from 'p-timeout';
import { runInContext, runInScope, type ContextSource, type TaskContext } from '../context.js';
import type { AnyFunction } from '../events/types.js';
import { withTimeout } from '../policies/timeout.js';
import type { TimeoutError } from '../errors.js';

/** How the work of a task is called: the API method's call adapter. */
export const Kind = Object.freeze({
  /** `schedule(fn)`, `wrap`, `map`: `fn(...args)`. */
  CALL: 0,
  /** `schedule(promise)`: the promise as it is. */
  PROMISE: 1,
  /** `fromCallback`, `promisify`: `fn(...args, callback)`. */
  CALLBACK: 2,
  /** `toThread`: `fn(...args)` in a later macrotask. */
  TO_THREAD: 3,
  /** `wrap(fn)` called as a method: `fn.apply(args[0], args.slice(1))`, so `fn` sees its object. */
  METHOD: 4,
  /** `CALL` with one argument, kept as it is rather than in an array: `fn(arg)`. */
  CALL_ONE: 5,
} as const);
export type Kind = (typeof Kind)[keyof typeof Kind];

/** What an attempt needs from its execution. */
export interface AttemptOwner extends ContextSource {
  /** Whether `attempt` is still the attempt to run (the task has not settled nor moved on). */
  isCurrent(attempt: number): boolean;
  /**
   * Called before a deferred body runs: when the instance is stopping, the owner cancels the task
   * and answers `true`, and the body never runs.
   */
  refuses(): boolean;
  /** The attempt ran past its timeout. */
  timedOut(error: TimeoutError): void;
}

/** `work(...args)`, without a spread for up to two arguments. */
export const call = (work: AnyFunction, args: readonly unknown[]): unknown => {
  const fn = work as (...a: readonly unknown[]) => unknown;
  switch (args.length) {
    case 0:
      return fn();
    case 1:
      return fn(args[0]);
    case 2:
      return fn(args[0], args[1]);
    default:
      return fn(...args);
  }
};

/** `work(arg)`: {@link Kind.CALL_ONE}. */
export const callOne = (work: AnyFunction, arg: unknown): unknown =>
  (work as (a: unknown) => unknown)(arg);

const callMethod = (work: AnyFunction, args: readonly unknown[]): unknown =>
  Reflect.apply(work, args[0], args.slice(1));

const callWithCallback = (work: AnyFunction, args: readonly unknown[]): Promise<unknown> =>
  new Promise((resolve, reject) => {
    let called = false;
    // A second call of the callback is ignored; a synchronous throw rejects (the executor
    // catches it), unless the callback already answered.
    (work as (...a: readonly unknown[]) => unknown)(
      ...args,
      (error: unknown, value: unknown): void => {
        if (called) return;
        called = true;
        // Node-style APIs hand over whatever they fail with; it reaches the caller unchanged.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        if (error !== null && error !== undefined) reject(error);
        else resolve(value);
      },
    );
  });

/** toThread: a later macrotask, so that the caller's turn of the event loop finishes first. */
function callLater(
  owner: AttemptOwner,
  work: AnyFunction,
  args: readonly unknown[],
  attempt: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      if (!owner.isCurrent(attempt) || owner.refuses()) {
        resolve(undefined);
        return;
      }
      try {
        resolve(runInContext(owner, call, work, args));
      } catch (error) {
        reject(error);
      }
    });
  });
}

/**
 * Calls the work of attempt `attempt` as its kind says, with `owner` as the current task. Returns
 * what the work returned (or the promise handed over); throws what it threw synchronously. Call it
 * inside the scope the attempt runs in (`runInAsyncScope()`: see {@link runInScope}).
 * `input` is the arguments: an array, or for {@link Kind.CALL_ONE} the one argument itself.
 */
export function invoke(
  owner: AttemptOwner,
  kind: Kind,
  work: unknown,
  input: unknown,
  attempt: number,
): unknown {
  if (kind === Kind.CALL_ONE) return runInScope(owner, callOne, work as AnyFunction, input);
  const args = input as readonly unknown[];
  switch (kind) {
    case Kind.CALL:
      return runInScope(owner, call, work as AnyFunction, args);
    case Kind.PROMISE:
      return work;
    case Kind.CALLBACK:
      return runInScope(owner, callWithCallback, work as AnyFunction, args);
    case Kind.METHOD:
      return runInScope(owner, callMethod, work as AnyFunction, args);
    default:
      return callLater(owner, work as AnyFunction, args, attempt);
  }
}

/**
 * What an attempt's work gave back, as a promise to wait on, limited to `timeout` ms (`Infinity`:
 * none), or `undefined` for a plain value, which settles the attempt at once. A foreign thenable
 * is adopted first: a `then()` that throws becomes a rejection, and no user code runs inside
 * `withTimeout()`. On expiry the owner is told first (`timedOut`), so the attempt's signal aborts.
 */
export function timed(
  out: PromiseLike<unknown>,
  timeout: number,
  owner: AttemptOwner,
): Promise<unknown> | ClearablePromise<unknown> {
  const promise: Promise<unknown> = out instanceof Promise ? out : Promise.resolve(out);
  if (timeout === Infinity) return promise;
  return withTimeout(promise, timeout, (error) => owner.timedOut(error));
}

/** The context of one attempt; its signal is made only when someone reads it. */
export class AttemptContext implements TaskContext {
  readonly id: string;
  readonly attempt: number;
  readonly function: string;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  constructor(id: string, attempt: number, name: string) {
    this.id = id;
    this.attempt = attempt;
    this.function = name;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}
