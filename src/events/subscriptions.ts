// The listener table behind the bus, over mitt: one emitter for unscoped listeners and one per
// function or execution scope, so an event reaches only the listeners of its scope without
// scanning the others. Every call is isolated: a throw or a rejection goes to the `report`
// callback and never reaches the emitter's caller (mitt's bare loop would let it skip the rest).
import mittImport, { type Emitter } from 'mitt';
import { isThenable, noop } from '../internal/util.js';
import type { InstancePayload } from './instance.js';
import type {
  AnyFunction,
  EventName,
  EventSource,
  Listener,
  ListenerScope,
  TaskPayload,
} from './types.js';

/** Any event's payload, task or instance. */
type Payload = TaskPayload | InstancePayload;

// mitt ships CommonJS-style typings: under `nodenext` its default import types as the module
// object, while at run time (ESM) it is the factory. This is the only module that imports mitt.
type Bus = Emitter<Record<string, Payload>>;
const mitt = mittImport as unknown as () => Bus;

/**
 * Calls the handlers of `event` on `bus`, as `bus.emit(event, payload)` does (over a copy of the
 * list, so a handler that unsubscribes skips no other; no `'*'` handlers are ever added). A
 * module function rather than each emitter's own `emit`, which is a closure per emitter: on the
 * hot path a second instance's `emit` was a new call target, and the optimized publishing code
 * was dropped.
 */
function emitOn(bus: Bus, event: EventName, payload: Payload): void {
  const handlers = bus.all.get(event);
  if (handlers === undefined) return;
  if (handlers.length === 1) (handlers[0] as (payload: Payload) => void)(payload);
  else for (const handler of handlers.slice()) (handler as (payload: Payload) => void)(payload);
}

interface Subscription {
  readonly id: string;
  readonly event: EventName;
  readonly listener: Listener<EventName>;
  readonly emitter: Bus;
  readonly key: AnyFunction | string | undefined;
  readonly handler: (payload: Payload) => void;
  readonly allowReentry: boolean;
  readonly maxChainDepth: number;
  depth: number;
}

/** A subscription as the bus sees it from outside the table. @internal */
export interface SubscriptionRef {
  readonly id: string;
  readonly event: EventName;
}

let subscriptionSeq = 0;

/** One instance's listeners, by scope. Arguments are validated by the bus before. @internal */
export class Subscriptions {
  readonly #report: (event: string, error: unknown) => void;
  readonly #global: Bus = mitt();
  readonly #byFunction = new Map<AnyFunction, Bus>();
  readonly #byExecution = new Map<string, Bus>();
  readonly #all = new Map<string, Subscription>();
  // Scoped subscriptions per scope emitter, so that ending an execution or emptying a scope
  // touches only that scope's subscriptions.
  readonly #members = new Map<Bus, Set<Subscription>>();
  // Unscoped listener count per event: the hot path reads this before building a payload.
  readonly #counts: Record<EventName, number> = {
    queued: 0,
    rate_limited: 0,
    started: 0,
    retry: 0,
    done: 0,
    error: 0,
    cancelled: 0,
    circuit_open: 0,
    circuit_half_open: 0,
    circuit_closed: 0,
    paused: 0,
    resumed: 0,
    limit_changed: 0,
    backend_error: 0,
  };

  /** @param report - Told of each listener that throws or rejects. */
  constructor(report: (event: string, error: unknown) => void) {
    this.#report = report;
  }

  /** How many subscriptions exist (all events and scopes). */
  get size(): number {
    return this.#all.size;
  }

  /** Whether some unscoped listener hears `event` (the only kind an instance event has). */
  hears(event: EventName): boolean {
    return this.#counts[event] > 0;
  }

  /** Whether some listener hears `event` for `source` (unscoped, or scoped to its function or id). */
  reaches(event: EventName, source: EventSource): boolean {
    return (
      this.#counts[event] > 0 ||
      (this.#byFunction.size > 0 && source.fn !== undefined && this.#byFunction.has(source.fn)) ||
      (this.#byExecution.size > 0 && this.#byExecution.has(source.id))
    );
  }

  /** Adds a listener within `scope` (its function or execution, and reentry rules); returns its id. */
  add<K extends EventName>(
    event: K,
    listener: Listener<K>,
    scope: ListenerScope | undefined,
  ): string {
    const key = scope?.function ?? scope?.execution;
    let emitter: Bus;
    if (scope?.function !== undefined) {
      emitter = this.#byFunction.get(scope.function) ?? mitt();
      this.#byFunction.set(scope.function, emitter);
    } else if (scope?.execution !== undefined) {
      emitter = this.#byExecution.get(scope.execution) ?? mitt();
      this.#byExecution.set(scope.execution, emitter);
    } else {
      emitter = this.#global;
      this.#counts[event] += 1;
    }
    const id = `sub-${++subscriptionSeq}`;
    const subscription: Subscription = {
      id,
      event,
      listener: listener as Listener<EventName>,
      emitter,
      key,
      allowReentry: scope?.allowReentry ?? false,
      maxChainDepth: scope?.maxChainDepth ?? 5,
      depth: 0,
      handler: (payload) => this.#call(subscription, payload),
    };
    this.#all.set(id, subscription);
    if (emitter !== this.#global) {
      const members = this.#members.get(emitter);
      if (members === undefined) this.#members.set(emitter, new Set([subscription]));
      else members.add(subscription);
    }
    emitter.on(event, subscription.handler);
    return id;
  }

  /** Removes one subscription; returns whether it existed. */
  remove(id: string): boolean {
    const subscription = this.#all.get(id);
    if (subscription === undefined) return false;
    this.#all.delete(id);
    const { emitter, event, handler, key } = subscription;
    emitter.off(event, handler);
    if (emitter === this.#global) {
      this.#counts[event] -= 1;
      return true;
    }
    // An empty scope leaves its table, so scoped listeners that come and go leave nothing behind.
    const members = this.#members.get(emitter);
    members?.delete(subscription);
    if (members === undefined || members.size === 0) {
      this.#members.delete(emitter);
      if (typeof key === 'function') this.#byFunction.delete(key);
      else if (typeof key === 'string') this.#byExecution.delete(key);
    }
    return true;
  }

  /** Removes every subscription of one listener function; returns whether there was one. */
  removeListener(listener: AnyFunction): boolean {
    let removed = false;
    for (const subscription of [...this.#all.values()]) {
      if (subscription.listener === listener) removed = this.remove(subscription.id) || removed;
    }
    return removed;
  }

  /** Removes every subscription; returns how many there were. */
  removeAll(): number {
    const count = this.#all.size;
    for (const id of [...this.#all.keys()]) this.remove(id);
    return count;
  }

  /** A copy of the subscriptions scoped to execution `id`, or undefined when there are none. */
  ofExecution(source: EventSource): SubscriptionRef[] | undefined {
    // Read before the id: making the id string on every settle showed in the profile.
    if (this.#byExecution.size === 0) return undefined;
    const emitter = this.#byExecution.get(source.id);
    if (emitter === undefined) return undefined;
    return [...(this.#members.get(emitter) ?? [])];
  }

  /**
   * Calls the listeners that hear `event` for a task of function `fn` and execution `id` (both
   * undefined for an instance event: only unscoped listeners hear it).
   */
  dispatch(
    event: EventName,
    payload: Payload,
    fn: AnyFunction | undefined,
    id: string | undefined,
  ): void {
    if (this.#counts[event] > 0) emitOn(this.#global, event, payload);
    if (fn !== undefined && this.#byFunction.size > 0) {
      const bus = this.#byFunction.get(fn);
      if (bus !== undefined) emitOn(bus, event, payload);
    }
    if (id !== undefined && this.#byExecution.size > 0) {
      const bus = this.#byExecution.get(id);
      if (bus !== undefined) emitOn(bus, event, payload);
    }
  }

  #call(subscription: Subscription, payload: Payload): void {
    // Reentry: the listener's own synchronous work emitted this event again.
    if (
      subscription.depth > 0 &&
      (!subscription.allowReentry || subscription.depth >= subscription.maxChainDepth)
    ) {
      return;
    }
    subscription.depth += 1;
    try {
      const result: unknown = subscription.listener(payload as never);
      if (isThenable(result)) {
        result.then(noop, (error: unknown) => this.#report(subscription.event, error));
      }
    } catch (error) {
      this.#report(subscription.event, error);
    } finally {
      subscription.depth -= 1;
    }
  }
}
