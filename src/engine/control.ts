import { LocalGate, type Gate } from '../policies/gate.js';
import { Counted } from './accounting.js';
import type { ResolvedOptions } from '../options.js';
import type { BackendHooks, SharedLimit, SharedPause } from '../policies/backend.js';
import type { Core, Member } from './core.js';

/** Applies a new concurrency limit (validated by the caller) and emits `limit_changed`. */
export function setConcurrency(core: Core, value: number, previous: number): void {
  if (core.gate instanceof LocalGate) core.gate.concurrency = value;
  else {
    // An unbounded instance gets its gate now: the tasks running already hold its slots.
    const gate = new LocalGate(value);
    for (const execution of core.accounting.live())
      if (execution.counted === Counted.ACTIVE) execution.adopt(gate);
    core.gate = gate;
  }
  core.events.instance('limit_changed', { limit: value, previous });
}

/** Cancels every waiting execution, oldest first. @returns How many were cancelled. */
export function clearWaiting(core: Core, reason: unknown): number {
  let cancelled = 0;
  // Oldest first, as they would have started.
  const live = core.accounting.live();
  for (let i = live.length - 1; i >= 0; i--) {
    const execution = live[i] as Member;
    if (execution.counted === Counted.PENDING && execution.cancel(reason)) cancelled += 1;
  }
  return cancelled;
}

/** A pause needs a gate to hold first attempts back in priority order. */
export function ensurePausable(core: Core): void {
  core.gate ??= new LocalGate(Infinity);
  if (core.gate instanceof LocalGate) core.gate.pause();
}

/** A gate whose limit can be read and written (the in-process one, a shared one). */
export function hasLimit(gate: Gate): gate is Gate & { concurrency: number } {
  return typeof (gate as { concurrency?: unknown }).concurrency === 'number';
}

/**
 * A shared concurrency limit changed (written here or by another process): the gate follows and
 * `limit_changed` is emitted, unless it is the limit already.
 */
export function followLimit(core: Core, limit: number): void {
  const gate = core.gate;
  if (gate === undefined || !hasLimit(gate)) return;
  const previous = gate.concurrency;
  if (limit === previous) return;
  gate.concurrency = limit;
  core.events.instance('limit_changed', { limit, previous });
}

/** Another process paused or resumed them all (or this one did; a repeat changes nothing). */
export function followPause(core: Core, until: number | undefined): void {
  if (until !== undefined) ensurePausable(core);
  core.pause.follow(until);
}

/** What a shared back end holds for every process besides its gate and bucket. */
export interface SharedControls {
  readonly pause: SharedPause | undefined;
  readonly limit: SharedLimit | undefined;
}

/**
 * Follows the pause and the concurrency limit a shared back end holds (when it shares them),
 * for as long as `live()` (a shut-down instance drains through a pause and is never paused
 * again).
 */
export function shareControls(
  core: Core,
  resolved: ResolvedOptions,
  hooks: BackendHooks | undefined,
  live: () => boolean,
): SharedControls {
  const backend = resolved.backend;
  const pause = backend?.createPause?.((until) => {
    if (live()) followPause(core, until);
  }, hooks);
  const limit =
    core.gate === undefined
      ? undefined
      : backend?.createLimit?.(
          resolved.concurrency,
          (value) => {
            if (live()) followLimit(core, value);
          },
          hooks,
        );
  return { pause, limit };
}

/** Writes the limit of every process, or throws when the back end does not share it. */
export function writeSharedLimit(core: Core, shared: SharedControls, value: number): void {
  if (shared.limit === undefined) {
    throw new TypeError(
      core.gate === undefined
        ? '`concurrency` cannot be set on an unbounded instance with a shared back end: give `concurrency` a limit at construction'
        : '`concurrency` cannot be changed with this back end: it does not share the limit',
    );
  }
  shared.limit.write(value);
  followLimit(core, value);
}
