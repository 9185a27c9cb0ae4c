import type { CircuitOpenError } from '../errors.js';
import type { Core } from './core.js';
import { nextSeq } from './record.js';
import { createTask, type Task, type TaskOwner } from './task-promise.js';

/**
 * A task an open circuit refused as it was scheduled, on an instance nobody listens to: it
 * counts as queued, failed and short-circuited, and rejects a microtask later, with no
 * execution behind it (no async scope, no slot, no entry among the live tasks). When anything
 * hears task events, a refused task goes through an execution instead, which announces it.
 */
class Refused implements TaskOwner, Refusable {
  readonly #seq = nextSeq();
  reject: ((error: unknown) => void) | undefined;

  get id(): string {
    return String(this.#seq);
  }

  /** Already failed: there is nothing to cancel. */
  cancel(): boolean {
    return false;
  }

  bind(_resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
    this.reject = reject;
  }

  refuse(error: CircuitOpenError): void {
    this.reject?.(error);
  }
}

/** A task an open circuit refused as it entered, failed a microtask later. */
export interface Refusable {
  refuse(error: CircuitOpenError): void;
}

// Refused tasks fail together a microtask later: by then the caller holds each task and has
// attached its handlers, so no rejection is tracked as unhandled first (on 100 000 refused tasks
// that tracking was an eighth of the time).
const resolved = Promise.resolve();
let pending: Refusable[] = [];
let errors: CircuitOpenError[] = [];
const refuseAll = (): void => {
  const targets = pending;
  const reasons = errors;
  pending = [];
  errors = [];
  for (let i = 0; i < targets.length; i++)
    (targets[i] as Refusable).refuse(reasons[i] as CircuitOpenError);
};

/** Fails `target` with `error` a microtask from now, with the others refused meanwhile. */
export function refuseSoon(target: Refusable, error: CircuitOpenError): void {
  errors.push(error);
  if (pending.push(target) === 1) void resolved.then(refuseAll);
}

/** The task of a schedule() that an open circuit refused with `error`; see {@link Refused}. */
export function refusedTask<R>(core: Core, error: CircuitOpenError): Task<R> {
  const counters = core.accounting.counters;
  counters.queued += 1;
  counters.error += 1;
  counters.shortCircuited += 1;
  const owner = new Refused();
  const task = createTask<R>(owner);
  refuseSoon(owner, error);
  return task;
}
