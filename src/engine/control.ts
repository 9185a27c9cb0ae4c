import { LocalGate, type Gate } from '../policies/gate.js';
import { Counted } from './accounting.js';
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
