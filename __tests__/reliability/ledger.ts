// Records every lifecycle event of an instance per execution id, and checks the accounting that
// must hold once the instance is at rest: nothing lost, nothing counted twice.
import { expect } from '@jest/globals';
import { Event, type Dovetail, type EventName, type TaskPayload } from '../../src/index.js';
import { TASK_EVENTS, TERMINAL } from '../helpers/events.js';

/** Every task event of one instance, in order, grouped by execution id. */
export class Ledger {
  readonly byId = new Map<string, TaskPayload[]>();
  readonly all: TaskPayload[] = [];

  constructor(dvt: Dovetail) {
    for (const event of TASK_EVENTS) {
      dvt.events.on(event, (payload: TaskPayload) => {
        this.all.push(payload);
        let list = this.byId.get(payload.executionId);
        if (list === undefined) this.byId.set(payload.executionId, (list = []));
        list.push(payload);
      });
    }
  }

  /** The event names of one execution, in order. */
  events(id: string): string[] {
    return (this.byId.get(id) ?? []).map((p) => p.event);
  }

  /** The one terminal payload of an execution (fails the test unless there is exactly one). */
  terminal(id: string): TaskPayload {
    const ends = (this.byId.get(id) ?? []).filter((p) => TERMINAL.has(p.event));
    expect(ends).toHaveLength(1);
    return ends[0] as TaskPayload;
  }

  count(event: EventName): number {
    return this.all.filter((p) => p.event === event).length;
  }
}

/**
 * At rest: queued == done + error + cancelled, active and pending 0, every execution seen opens
 * with `queued` and ends with exactly one terminal event, and the counters agree with the events.
 */
export function expectBalanced(dvt: Dovetail, ledger: Ledger): void {
  const stats = dvt.events.stats();
  expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
  expect({ active: dvt.active, pending: dvt.pending }).toEqual({ active: 0, pending: 0 });
  for (const [id, payloads] of ledger.byId) {
    const names = payloads.map((p) => p.event);
    expect({ id, first: names[0] }).toEqual({ id, first: Event.QUEUED });
    const terminals = names.filter((name) => TERMINAL.has(name));
    expect({
      id,
      terminals: terminals.length,
      last: TERMINAL.has(names[names.length - 1] ?? ''),
    }).toEqual({
      id,
      terminals: 1,
      last: true,
    });
  }
  expect({
    queued: ledger.count(Event.QUEUED),
    started: ledger.count(Event.STARTED),
    retries: ledger.count(Event.RETRY),
    throttled: ledger.count(Event.RATE_LIMITED),
    done: ledger.count(Event.DONE),
    error: ledger.count(Event.ERROR),
    cancelled: ledger.count(Event.CANCELLED),
  }).toEqual({
    queued: stats.queued,
    started: stats.started,
    retries: stats.retries,
    throttled: stats.throttled,
    done: stats.done,
    error: stats.error,
    cancelled: stats.cancelled,
  });
}
