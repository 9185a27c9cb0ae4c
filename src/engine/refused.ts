import type { CircuitOpenError } from '../errors.js';
import type { Core } from './core.js';
import { nextSeq } from './record.js';
import type { Task } from './task-promise.js';

/** A refused task has already failed: there is nothing to cancel. */
const alreadyFailed = (): boolean => false;

/**
 * A task an open circuit refused as it was scheduled, on an instance nobody listens to: it
 * counts as queued, failed and short-circuited, and rejects a microtask later, with no
 * execution behind it (no async scope, no slot, no entry among the live tasks). When anything
 * hears task events, a refused task goes through an execution instead, which announces it.
 *
 * It is the task and its own record in one object: a native promise with its number, whose
 * `id` and `cancel` live on the prototype. On 100 000 refused tasks held at once, what each one
 * allocates is mostly what the garbage collector then copies, so it allocates nothing else but
 * the promise's own resolvers. Like `TaskPromise`, its prototype's `constructor` is `Promise`.
 */
class RefusedTask<R> extends Promise<R> implements Task<R> {
  readonly #seq: number;

  constructor(
    executor: (resolve: (value: R) => void, reject: (error: unknown) => void) => void,
    seq: number,
  ) {
    super(executor);
    this.#seq = seq;
  }

  get id(): string {
    return String(this.#seq);
  }

  /** One function for every refused task: it works detached, and always answers `false`. */
  get cancel(): (reason?: unknown) => boolean {
    return alreadyFailed;
  }
}
Reflect.defineProperty(RefusedTask.prototype, 'constructor', {
  value: Promise,
  writable: true,
  configurable: true,
});

/** A task an open circuit refused as it entered, failed a microtask later. */
export interface Refusable {
  refuse(error: CircuitOpenError): void;
}

type Reject = (error: unknown) => void;

// Refused tasks fail together a microtask later: by then the caller holds each task and has
// attached its handlers, so no rejection is tracked as unhandled first (on 100 000 refused tasks
// that tracking was an eighth of the time). An entry is an execution refused as it entered, or
// the reject function of a task refused without one.
const resolved = Promise.resolve();
let pending: (Refusable | Reject)[] = [];
let errors: CircuitOpenError[] = [];
const refuseAll = (): void => {
  const targets = pending;
  const reasons = errors;
  pending = [];
  errors = [];
  for (let i = 0; i < targets.length; i++) {
    const target = targets[i] as Refusable | Reject;
    const reason = reasons[i] as CircuitOpenError;
    if (typeof target === 'function') target(reason);
    else target.refuse(reason);
  }
};

/** Fails `target` with `error` a microtask from now, with the others refused meanwhile. */
export function refuseSoon(target: Refusable | Reject, error: CircuitOpenError): void {
  errors.push(error);
  if (pending.push(target) === 1) void resolved.then(refuseAll);
}

// The promise executor writes here: a module-level function, so making a task allocates no
// closure for it.
let capturedReject: Reject | undefined;
const capture = (_resolve: unknown, reject: Reject): void => {
  capturedReject = reject;
};

/** The task of a schedule() that an open circuit refused with `error`; see {@link RefusedTask}. */
export function refusedTask<R>(core: Core, error: CircuitOpenError): Task<R> {
  const counters = core.accounting.counters;
  counters.queued += 1;
  counters.error += 1;
  counters.shortCircuited += 1;
  const task = new RefusedTask<R>(capture, nextSeq());
  refuseSoon(capturedReject as Reject, error);
  capturedReject = undefined;
  return task;
}
