import type { AsyncResource } from 'node:async_hooks';
import type { QueueFullError, ShutdownError } from '../errors.js';
import type { Events } from '../events/bus.js';
import type { Gate, LocalGate } from '../policies/gate.js';
import type { RateLimiter } from '../policies/rate-limit.js';
import type { KeyLimits } from '../queue/keys.js';
import type { QueueOverflow } from '../queue/options.js';
import type { Pause } from '../queue/pause.js';
import type { LatencyWindow } from '../latency/quantile.js';
import type { CircuitControl } from '../resilience/circuit-view.js';
import type { AdaptiveControl } from '../latency/adaptive-control.js';
import type { Accounting, Counting } from './accounting.js';

/** An execution as the instance and `map` see it. */
export interface Member extends Counting {
  readonly priority: number;
  readonly seq: number;
  /** Where its outcome goes when it has no `Task` of its own (a `map` item). */
  readonly sink: Sink | undefined;
  /** The `map` slot it fills. */
  readonly index: number;
  /** Called once its gate slot is free (with no gate: a microtask after it was scheduled). */
  run(release: (() => void) | undefined): void;
  cancel(reason?: unknown): boolean;
  /** `shutdown({ wait: false })`. */
  stop(reason: ShutdownError): void;
  /** The instance got a gate while the task runs: it holds one of its slots from now on. */
  adopt(gate: LocalGate): void;
  /** A full queue sheds the task, which still waits: it fails with `error`. */
  shed(error: QueueFullError): void;
}

/** Receives the outcome of an execution that has no `Task` of its own (a `map` item). */
export interface Sink {
  /** The async context of the `map()` call, in which every item runs. */
  readonly scope: AsyncResource;
  settled(item: { readonly index: number }, ok: boolean, value: unknown): void;
}

/** What the executions of one instance share; owned by `Dovetail`. */
export interface Core {
  readonly events: Events;
  /** The concurrency gate; made on demand when an unbounded instance gets a limit or a pause. */
  gate: Gate | undefined;
  readonly limiter: RateLimiter | undefined;
  readonly accounting: Accounting<Member>;
  /** `shutdown({ wait: false })` began: no further attempt starts. */
  stopping: boolean;
  /** The per-key limits (`perKey`), when the instance has them. */
  readonly keys: KeyLimits | undefined;
  readonly pause: Pause;
  /** The circuit breaker, when the instance has one. */
  readonly circuit: CircuitControl | undefined;
  /** Most tasks waiting at once, and what a task arriving at a full queue gets. */
  readonly maxQueue: number;
  readonly queueOverflow: QueueOverflow;
  /** Recent attempt latencies; made when a hedge by percentile is first armed. */
  latency: LatencyWindow | undefined;
  /** `concurrency: 'adaptive'`: what turns attempts into the limit. */
  adaptive: AdaptiveControl | undefined;
}

/**
 * The async resource type of a task's scope (what async_hooks and AsyncLocalStorage see). Its
 * `destroy` is left to Node, which emits it at garbage collection, and only when some async hook
 * listens for it (an APM's context map would otherwise keep every task's entry).
 */
export const SCOPE = 'Dovetail';

// Executions with no gate start a microtask after they were scheduled, all those of one
// synchronous stretch in one microtask (Node's queueMicrotask() makes an AsyncResource and a
// bound function per call).
const resolved = Promise.resolve();
let due: Member[] = [];
const runDue = (): void => {
  const now = due;
  due = [];
  for (const member of now) member.run(undefined);
};

/** Runs `member` a microtask from now, with no gate slot. */
export function runSoon(member: Member): void {
  if (due.push(member) === 1) void resolved.then(runDue);
}

/** Cancels every live execution of `core` that reports to `sink`, oldest first. */
export function cancelFor(core: Core, sink: Sink, reason: unknown): void {
  const live = core.accounting.live();
  for (let i = live.length - 1; i >= 0; i--) {
    const member = live[i] as Member;
    if (member.sink === sink) member.cancel(reason);
  }
}
