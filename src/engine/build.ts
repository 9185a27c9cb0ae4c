import type { Events } from '../events/bus.js';
import type { ResolvedOptions } from '../options.js';
import type { BackendHooks, BackendProblem } from '../policies/backend.js';
import { LocalGate, type Gate } from '../policies/gate.js';
import { TokenBucket, type RateLimiter } from '../policies/rate-limit.js';
import { Keys } from '../queue/keys.js';
import type { CostLimits } from '../queue/options.js';
import { Pause } from '../queue/pause.js';
import { Circuit } from '../resilience/circuit.js';
import type { CircuitControl, CircuitListener } from '../resilience/circuit-view.js';
import { AdaptiveControl } from '../latency/adaptive-control.js';
import { Accounting, type Drain } from './accounting.js';
import { setConcurrency } from './control.js';
import type { Core, Member } from './core.js';

// A back end's report becomes a `backend_error` event: it concerns the instance, not one task.
function reportBackend(events: Events, problem: BackendProblem): void {
  events.instance('backend_error', {
    method: 'backend',
    task: 0,
    executionId: '',
    ...problem,
  });
}

/** Refuses the options a back end cannot hold for every process (it lacks their hooks). */
export function refuseShared(resolved: ResolvedOptions): void {
  const backend = resolved.backend;
  if (backend === undefined) return;
  if (resolved.perKey !== undefined && backend.createKeys === undefined) {
    throw new TypeError(
      '`perKey` is not supported with this back end: its limits would hold per process',
    );
  }
  if (resolved.adaptive !== undefined) {
    throw new TypeError(
      "`concurrency: 'adaptive'` is not supported with a shared back end (`backend`) yet: the limit would adapt per process",
    );
  }
  if (resolved.circuit !== undefined && backend.createCircuit === undefined) {
    throw new TypeError(
      '`circuitBreaker` is not supported with this back end: its state would hold per process',
    );
  }
}

/**
 * Builds what the executions of one instance share, from its resolved options: the gate and the
 * bucket (in process, or the back end's), the accounting, the keys, the pause and the circuit.
 * `drain` is told each time the last live execution settles.
 */
export function buildCore(
  resolved: ResolvedOptions,
  events: Events,
  drain: Drain,
  hooks: BackendHooks | undefined,
): Core {
  const backend = resolved.backend;
  let gate: Gate | undefined;
  if (resolved.concurrency !== Infinity) {
    gate =
      backend === undefined
        ? new LocalGate(resolved.concurrency)
        : backend.createGate({ concurrency: resolved.concurrency }, hooks);
  }
  let limiter: RateLimiter | undefined;
  if (resolved.rateLimit !== undefined) {
    limiter =
      backend === undefined
        ? new TokenBucket(resolved.rateLimit.perSecond, resolved.rateLimit.burst)
        : backend.createRateLimiter(resolved.rateLimit, hooks);
  }
  const perKey = resolved.perKey;
  const accounting = new Accounting<Member>(events.counters, drain);
  const core: Core = {
    events,
    gate,
    limiter,
    accounting,
    stopping: false,
    keys:
      perKey === undefined
        ? undefined
        : (backend?.createKeys?.(perKey, hooks) ?? new Keys(perKey.concurrency, perKey.rateLimit)),
    pause: new Pause({
      paused: (until) => events.instance('paused', until === undefined ? {} : { until }),
      resumed: () => events.instance('resumed', {}),
      reopen: () => {
        if (core.gate instanceof LocalGate) core.gate.resume();
      },
      get busy(): boolean {
        return !accounting.idle;
      },
    }),
    maxQueue: resolved.maxQueue,
    queueOverflow: resolved.queueOverflow,
    circuit: makeCircuit(resolved, events, hooks),
    // Every field in the literal, so that every instance's core has one shape.
    latency: undefined,
    adaptive: undefined,
  };
  const adaptive = resolved.adaptive;
  if (adaptive !== undefined) {
    const gate = core.gate as LocalGate;
    core.adaptive = new AdaptiveControl(
      adaptive,
      () => gate.active,
      (limit, previous) => setConcurrency(core, limit, previous),
    );
  }
  return core;
}

/** The hooks through which a back end reports trouble: each report a `backend_error`. */
export function backendHooks(resolved: ResolvedOptions, events: Events): BackendHooks | undefined {
  return resolved.backend === undefined
    ? undefined
    : { report: (problem) => reportBackend(events, problem) };
}

/** The breaker: the back end's shared one when it has one, else this process's own. */
function makeCircuit(
  resolved: ResolvedOptions,
  events: Events,
  hooks: BackendHooks | undefined,
): (CircuitControl & { close?(): Promise<void> | void }) | undefined {
  const options = resolved.circuit;
  if (options === undefined) return undefined;
  const listener: CircuitListener = {
    opened: (failures, error, retryAt) =>
      events.instance('circuit_open', { failures, error, retryAt }),
    halfOpened: () => events.instance('circuit_half_open', {}),
    closed: () => events.instance('circuit_closed', {}),
  };
  return (
    resolved.backend?.createCircuit?.(options, listener, hooks) ?? new Circuit(options, listener)
  );
}

/** What a task's `cost` may be on an instance with these options. */
export function costLimits(resolved: ResolvedOptions): CostLimits {
  return { burst: resolved.rateLimit?.burst, keyBurst: resolved.perKey?.rateLimit?.burst };
}
