/**
 * A task handed to the caller: a real `Promise` (it works with `await`, `Promise.all` and
 * `instanceof Promise`) that also carries its execution id and can be cancelled.
 *
 * @example
 * ```ts
 * import { Dovetail, type Task } from 'dovetailjs';
 * const dvt = new Dovetail();
 * const task: Task<number> = dvt.task.schedule(async () => 42);
 * console.log(task.id, task instanceof Promise, await task);
 * ```
 */
export interface Task<R> extends Promise<R> {
  /** The execution id; the same string as the payloads' `executionId` and `current().id`. */
  readonly id: string;
  /**
   * Cancels the task: it rejects with `CancelledError` at once (even if the function ignores its
   * signal), emits `cancelled`, and is not retried. The running attempt's signal is aborted.
   * @param reason - Kept as the error's `cause`.
   * @returns `false` when the task had already settled.
   */
  cancel(reason?: unknown): boolean;
}

/** What a task answers for: its execution. */
export interface TaskOwner {
  readonly id: string;
  cancel(reason?: unknown): boolean;
  /** Receives the task's resolve and reject functions, once, while the task is made. */
  bind(resolve: (value: unknown) => void, reject: (error: unknown) => void): void;
}

/**
 * A native promise whose `id` and `cancel` live on the prototype, so that a task costs no id
 * string, closure or property storage of its own until someone asks for them.
 *
 * Its prototype's `constructor` is `Promise`, so it behaves as a plain promise everywhere: `await`
 * takes it as it is (no extra turn), and `then()` and `Promise.all()` derive plain promises.
 */
class TaskPromise<R> extends Promise<R> implements Task<R> {
  readonly #owner: TaskOwner;
  #cancel: ((reason?: unknown) => boolean) | undefined;

  constructor(
    executor: (resolve: (value: R) => void, reject: (error: unknown) => void) => void,
    owner: TaskOwner,
  ) {
    super(executor);
    this.#owner = owner;
  }

  get id(): string {
    return this.#owner.id;
  }

  /** Bound on first read, so that `const { cancel } = task` and `setTimeout(task.cancel)` work. */
  get cancel(): (reason?: unknown) => boolean {
    const owner = this.#owner;
    return (this.#cancel ??= (reason?: unknown): boolean => owner.cancel(reason));
  }
}
Reflect.defineProperty(TaskPromise.prototype, 'constructor', {
  value: Promise,
  writable: true,
  configurable: true,
});

// The promise executor writes here: a module-level function, so making a task allocates no
// closure nor context for it.
let capturedResolve: ((value: unknown) => void) | undefined;
let capturedReject: ((error: unknown) => void) | undefined;
const capture = (resolve: (value: unknown) => void, reject: (error: unknown) => void): void => {
  capturedResolve = resolve;
  capturedReject = reject;
};

/** Makes the task of `owner`, whose `bind` receives its resolvers before this returns. */
export function createTask<R>(owner: TaskOwner): Task<R> {
  const task = new TaskPromise<unknown>(capture, owner);
  owner.bind(
    capturedResolve as (value: unknown) => void,
    capturedReject as (error: unknown) => void,
  );
  capturedResolve = undefined;
  capturedReject = undefined;
  return task as Task<R>;
}
