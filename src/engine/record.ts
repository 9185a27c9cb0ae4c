import { AsyncResource } from 'node:async_hooks';
import type { AnyFunction, EventName, MethodName, TaskPayload } from '../events/types.js';
import { noop } from '../internal/util.js';
import type { ResolvedPolicy } from '../options.js';
import { functionName } from './announce.js';
import { AttemptContext, Kind } from './attempt.js';
import { Counted } from './accounting.js';
import { SCOPE, type Core, type Member, type Sink } from './core.js';
import { newHoldings, Phase, type Holdings } from './phase.js';
import { createTask, type Task } from './task-promise.js';

let sequence = 0;

// The layout of `TaskRecord.bits`: the phase (0-4), where the task is counted (0-2), two flags,
// the kind (0-5), then the API method (an index into METHODS).
const PHASE_MASK = 0b111;
const COUNTED_SHIFT = 3;
const COUNTED_MASK = 0b11 << COUNTED_SHIFT;
const KEY_HELD = 1 << 5;
const TOKEN_TAKEN = 1 << 6;
const KIND_SHIFT = 7;
const KIND_MASK = 0b111 << KIND_SHIFT;
const METHOD_SHIFT = 10;
const METHODS: readonly MethodName[] = [
  'schedule',
  'toThread',
  'map',
  'mapIterable',
  'fromCallback',
  'promisify',
  'wrap',
];

/** The next task number of the process (tasks and refused tasks share the sequence). */
export const nextSeq = (): number => ++sequence;

/**
 * What one task is, apart from where it is in its life: its identity, its work, where its outcome
 * goes (its `Task` promise or a `map` sink), the payloads and the attempt context it hands out,
 * and what it holds only while something needs it. The state machine ({@link Execution}) builds
 * on it.
 */
export abstract class TaskRecord {
  // Every field is declared here and set in the constructor, plain rather than #private: the
  // object never leaves the engine, and a profile of a cold map() showed the field initializers
  // of a base class and its subclass costing more per task than the rest of its construction.
  // For the same reason the classes built on it keep their helpers TypeScript-`private`, not
  // #private: a class with #private methods stamps its brand on every instance, one more field a
  // task (a heap snapshot of a map item: 256 bytes with two brands, 240 without).
  declare readonly seq: number;
  declare readonly core: Core;
  declare readonly policy: ResolvedPolicy;
  declare readonly work: unknown;
  /** The arguments: an array, or for `Kind.CALL_ONE` the one argument itself. */
  declare readonly input: unknown;
  /** Where the outcome goes when the task has no `Task` of its own (a `map` item). */
  declare readonly sink: Sink | undefined;
  /** The async context of the call that scheduled the task: every attempt runs in it. */
  declare readonly scope: AsyncResource;
  /** The attempt started last (0 before the first). */
  declare attempt: number;
  /** What it holds only while something needs it; made on first use. */
  declare holdings: Holdings | undefined;
  /**
   * Its phase, where the accounting counts it, its two flags, its kind and its API method, packed
   * in one small integer (see the accessors below): six fields were 48 bytes of every queued task,
   * one is 8.
   */
  declare bits: number;
  /**
   * `performance.now()` of the first start; undefined before it. Undefined rather than a number:
   * a field that starts as a small integer such as `-1` changes representation at the first start
   * (a new shape for every execution's class, and the optimized code built on the old one
   * dropped), and one that starts as a double is a box allocated with each record, kept while the
   * task waits (16 bytes a queued task).
   */
  declare startedAt: number | undefined;
  /** Gives the gate slot back; set while the execution holds one. */
  declare releaseSlot: (() => void) | undefined;
  /** Its links in the live list (where it is counted: {@link counted}). */
  declare livePrev: Member | undefined;
  declare liveNext: Member | undefined;
  declare resolveTask: ((value: unknown) => void) | undefined;
  declare rejectTask: ((error: unknown) => void) | undefined;
  declare taskPromise: Task<unknown> | undefined;
  declare attemptContext: AttemptContext | undefined;
  /** The task's key (`with({ key })`, a `map` key), or undefined. */
  declare readonly key: string | undefined;
  /** The circuit's ticket of the attempt now running, or -1. */
  declare ticket: number;
  /**
   * `performance.now()` when the attempt now running started, while latency is measured (hedging
   * by percentile, adaptive concurrency); else undefined (as `startedAt`, and most tasks never
   * measure an attempt).
   */
  declare attemptAt: number | undefined;

  constructor(
    core: Core,
    policy: ResolvedPolicy,
    method: MethodName,
    kind: Kind,
    work: unknown,
    input: unknown,
    sink: Sink | undefined,
    key: string | undefined,
  ) {
    this.seq = nextSeq();
    this.core = core;
    this.policy = policy;
    this.work = work;
    this.input = input;
    this.sink = sink;
    this.scope = sink === undefined ? new AsyncResource(SCOPE) : sink.scope;
    this.attempt = 0;
    this.holdings = undefined;
    // Phase.QUEUED, Counted.NOWHERE, neither flag.
    this.bits = (kind << KIND_SHIFT) | (METHODS.indexOf(method) << METHOD_SHIFT);
    this.startedAt = undefined;
    this.releaseSlot = undefined;
    this.livePrev = undefined;
    this.liveNext = undefined;
    this.resolveTask = undefined;
    this.rejectTask = undefined;
    this.taskPromise = undefined;
    this.attemptContext = undefined;
    this.key = key;
    this.ticket = -1;
    this.attemptAt = undefined;
    // A promise handed over may reject while the task still waits for its slot or token: it is
    // observed from now on, so that wait is not reported as an unhandled rejection.
    if (kind === Kind.PROMISE && work instanceof Promise) work.catch(noop);
  }

  /** Where it is in its life (the state machine's). */
  get phase(): Phase {
    return (this.bits & PHASE_MASK) as Phase;
  }

  set phase(value: Phase) {
    this.bits = (this.bits & ~PHASE_MASK) | value;
  }

  /** Where the accounting counts it. */
  get counted(): Counted {
    return ((this.bits & COUNTED_MASK) >> COUNTED_SHIFT) as Counted;
  }

  set counted(value: Counted) {
    this.bits = (this.bits & ~COUNTED_MASK) | (value << COUNTED_SHIFT);
  }

  /** Whether it holds a slot of its key (per-key limits). */
  get keyHeld(): boolean {
    return (this.bits & KEY_HELD) !== 0;
  }

  set keyHeld(value: boolean) {
    this.bits = value ? this.bits | KEY_HELD : this.bits & ~KEY_HELD;
  }

  /** Its first attempt's instance token was taken when the gate admitted it. */
  get tokenTaken(): boolean {
    return (this.bits & TOKEN_TAKEN) !== 0;
  }

  set tokenTaken(value: boolean) {
    this.bits = value ? this.bits | TOKEN_TAKEN : this.bits & ~TOKEN_TAKEN;
  }

  /** How its work is called. */
  get kind(): Kind {
    return ((this.bits & KIND_MASK) >> KIND_SHIFT) as Kind;
  }

  /** The API method that made it. */
  get method(): MethodName {
    return METHODS[this.bits >> METHOD_SHIFT] as MethodName;
  }

  /** The execution id: the same string as `Task.id` and the payloads' `executionId`. */
  get id(): string {
    return String(this.seq);
  }

  /** The task's function; undefined for a promise handed over as it is. */
  get fn(): AnyFunction | undefined {
    return this.kind === Kind.PROMISE ? undefined : (this.work as AnyFunction);
  }

  /** Higher starts first (its policy's). */
  get priority(): number {
    return this.policy.priority;
  }

  /** Rate-limit tokens each attempt takes (its policy's). */
  get cost(): number {
    return this.policy.cost;
  }

  /** The `map` slot this task fills: its second argument. */
  get index(): number {
    return (this.input as readonly unknown[])[1] as number;
  }

  /** The object published on `dovetail:task` for this task. */
  get channelContext(): Record<string, unknown> | undefined {
    return this.holdings?.channelContext;
  }

  set channelContext(value: Record<string, unknown> | undefined) {
    this.hold().channelContext = value;
  }

  /** The async context its attempts run in while its span is open on `dovetail:task`. */
  get channelScope(): AsyncResource | undefined {
    return this.holdings?.channelScope;
  }

  set channelScope(value: AsyncResource | undefined) {
    this.hold().channelScope = value;
  }

  /** The `Task` promise (made once, for `schedule` and friends). */
  task<R>(): Task<R> {
    return (this.taskPromise ??= createTask<unknown>(this)) as Task<R>;
  }

  /** Receives the task's resolvers while {@link task} makes it. */
  bind(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
    this.resolveTask = resolve;
    this.rejectTask = reject;
  }

  abstract cancel(reason?: unknown): boolean;

  /** The context of the attempt now running (made on first request, or when it is aborted). */
  context(): AttemptContext {
    let context = this.attemptContext;
    if (context === undefined || context.attempt !== this.attempt) {
      const name = functionName(this.kind, this.work) ?? '<promise>';
      this.attemptContext = context = new AttemptContext(this.id, this.attempt, name);
    }
    return context;
  }

  /** A payload with the fields every event of this task carries. */
  payload(event: EventName): TaskPayload {
    const payload: TaskPayload = {
      event,
      method: this.method,
      task: this.seq,
      executionId: this.id,
    };
    const name = functionName(this.kind, this.work);
    if (name !== undefined) payload.function = name;
    if (this.key !== undefined) payload.key = this.key;
    // A `map`/`mapIterable` item (the one kind of task with a sink): its position in the input.
    if (this.sink !== undefined) payload.index = this.index;
    return payload;
  }

  hold(): Holdings {
    return (this.holdings ??= newHoldings());
  }

  /** The task's own signal, for its waits between attempts (token, retry sleep). */
  signal(): AbortSignal {
    const holdings = this.hold();
    return (holdings.controller ??= new AbortController()).signal;
  }

  /** Hands the outcome to the sink or the task promise. */
  deliver(ok: boolean, value: unknown, cancelled: boolean): void {
    if (this.sink !== undefined) this.sink.settled(this, ok, value);
    else if (ok) this.resolveTask?.(value);
    else {
      // A cancelled task nobody awaits must not crash the process as an unhandled rejection:
      // cancelling is the caller's own decision. Errors of the work itself are left alone.
      if (cancelled) this.taskPromise?.catch(noop);
      this.rejectTask?.(value);
    }
  }
}
