import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What a running task knows about itself, from `dvt.task.current()` or `currentTask()`.
 */
export interface TaskContext {
  /** The execution id: the same string as `Task.id` and the payloads' `executionId`. */
  readonly id: string;
  /** The attempt now running, 1-based. */
  readonly attempt: number;
  /**
   * Aborts when the attempt times out, the task is cancelled, or the instance shuts down without
   * waiting. Pass it on to `fetch`, streams and timers to stop work nobody will use.
   */
  readonly signal: AbortSignal;
  /** The function's name (`'<anonymous>'` when it has none). */
  readonly function: string;
}

/** Where the context of the attempt now running comes from. @internal */
export interface ContextSource {
  /** The context of the attempt now running (made on first request). */
  context(): TaskContext;
}

// Two ways to find the running task. `slot` is set around the synchronous part of every attempt:
// free, and enough for code that reads the context before its first `await`. The
// AsyncLocalStorage store follows the task across awaits, but on Node < 24 entering one turns on
// promise hooks for the whole process, which costs every promise, the user's included, more than
// the rest of a task's overhead together. So on those versions it is switched on by the first
// `current()` call; on Node >= 24 (AsyncContextFrame, no promise hooks) it is on from the start.
let slot: ContextSource | undefined;
let store: AsyncLocalStorage<TaskContext> | undefined;

const eager = Number(process.versions.node.split('.')[0]) >= 24;

function enableStore(): AsyncLocalStorage<TaskContext> {
  return (store ??= new AsyncLocalStorage<TaskContext>());
}

/**
 * Calls `call(a, b)` with `source` as the current task. @internal
 */
export function runInContext<A, B, R>(
  source: ContextSource,
  call: (a: A, b: B) => R,
  a: A,
  b: B,
): R {
  if (eager) store ??= new AsyncLocalStorage<TaskContext>();
  const previous = slot;
  const entered = store;
  slot = source;
  try {
    return entered === undefined ? call(a, b) : entered.run(source.context(), call, a, b);
  } finally {
    slot = previous;
    // `current()` switched the store on inside the call and entered it for this synchronous
    // stretch: leave it, so that only the task's own continuations keep the context.
    if (entered === undefined && store !== undefined)
      store.enterWith(previous?.context() as TaskContext);
  }
}

/**
 * {@link runInContext} for a caller inside `AsyncResource.runInAsyncScope()` (the task's scope,
 * which every attempt runs in): the scope puts the caller's context back when it returns, so on
 * Node >= 24 the store is entered with `enterWith()` and not left. There `run()` makes two
 * context frames, each a copy of the current one (a `Map`): one to enter and one more to restore
 * the store it found, and the second was half the cost of following a task across awaits (W1 on
 * Node 24: 2,529 ns a task against p-limit's 2,161). On older versions entering is a property
 * set on the current resource and `run()` restores it for free: the same as
 * {@link runInContext}. @internal
 */
export function runInScope<A, B, R>(source: ContextSource, call: (a: A, b: B) => R, a: A, b: B): R {
  if (!eager) return runInContext(source, call, a, b);
  const previous = slot;
  slot = source;
  try {
    (store ??= new AsyncLocalStorage<TaskContext>()).enterWith(source.context());
    return call(a, b);
  } finally {
    slot = previous;
  }
}

/**
 * The task running now, found across awaits; `undefined` outside any task.
 *
 * On Node 20 and 22 the store that follows a task across `await` is switched on by the first call
 * (it slows every promise in the process once on): a call before the task's first `await` always
 * answers, and from then on every task is followed. Call `currentTask()` once at start-up to have
 * it from the first task. On Node 24 and later it is always on.
 *
 * @returns `{ id, attempt, signal, function }`, or `undefined`.
 * @example
 * ```ts
 * import { Dovetail, currentTask } from 'dovetailjs';
 * const dvt = new Dovetail({ timeout: 1000 });
 * await dvt.task.schedule(async () => {
 *   const { id, signal } = currentTask()!;
 *   const response = await fetch('http://127.0.0.1:9/', { signal }).catch(() => undefined);
 *   return [id, response?.status];
 * });
 * ```
 */
export function currentTask(): TaskContext | undefined {
  if (slot !== undefined) {
    const context = slot.context();
    if (store === undefined) {
      // Asked before the first await: answer from the slot, and carry the context into this
      // task's continuations so that it still answers after its awaits.
      enableStore().enterWith(context);
    }
    return context;
  }
  if (store === undefined) {
    enableStore();
    return undefined;
  }
  return store.getStore();
}
