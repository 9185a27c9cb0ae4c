// Queue control, property-tested (API.md 0.2, "Queue control" and "Precise semantics"): for any
// sequence of submissions with random priorities and keys, held open by deferreds, released in a
// random order and cancelled at random,
// - starts follow priority, then submission order, among the tasks eligible to start (a model
//   replays the sequence: whenever a slot frees, the highest-priority, earliest-submitted waiting
//   task whose key has room starts);
// - tasks running per key never exceed `perKey.concurrency`, overall never `concurrency`;
// - a task whose key and the instance both have room counts in `active` as soon as schedule()
//   returns and runs within a tick: no head-of-line blocking;
// - with `maxQueue`, both `queueOverflow` modes and clearQueue() mixed in, the right task is shed
//   or cleared, every promise settles, and at rest queued == done + error + cancelled with
//   stats().shed equal to the QueueFullError rejections.
// The counters are read the moment schedule() returns (the order properties also submit in
// bursts, with no flush in between); everything else is compared between operations, after a
// flush (every microtask run): the contract says when a task counts and starts, not in which
// microtask a freed slot passes on.
import { afterEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CancelledError, QueueFullError, type Dovetail, type Task } from '../../src/index.js';
import { defer, flush, type Deferred } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(closeAll);

type Key = string | undefined;

type Op =
  // `settle: false`: the next operation follows in the same synchronous stretch (a burst).
  | {
      readonly kind: 'submit';
      readonly priority: number;
      readonly key: Key;
      readonly settle: boolean;
    }
  | { readonly kind: 'release'; readonly pick: number; readonly fail: boolean }
  | { readonly kind: 'cancel'; readonly pick: number }
  | { readonly kind: 'clear' };

interface Scenario {
  readonly concurrency: number;
  /** `perKey.concurrency`, or undefined for an instance without `perKey` (keys only label). */
  readonly perKey: number | undefined;
  readonly ops: readonly Op[];
  /** Which running task each step of the final drain releases. */
  readonly drain: readonly number[];
}

interface Shedding extends Scenario {
  readonly maxQueue: number;
  readonly queueOverflow: 'reject' | 'drop-oldest';
}

// Mostly small integers (0 the most common, so the queues start on their no-priority path and
// move to the heap), some fractions and negatives.
const priorityArb = fc.oneof(
  { arbitrary: fc.constant(0), weight: 3 },
  { arbitrary: fc.integer({ min: -2, max: 3 }), weight: 4 },
  { arbitrary: fc.constantFrom(0.5, -1.5, 2.25, -0.25), weight: 2 },
);
const keyArb: fc.Arbitrary<Key> = fc.constantFrom('a', 'b', 'c', undefined);
const submitArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('submit' as const),
  priority: priorityArb,
  key: keyArb,
  settle: fc.boolean(),
});
const releaseArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('release' as const),
  pick: fc.nat(),
  fail: fc.boolean(),
});
const cancelArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('cancel' as const),
  pick: fc.nat(),
});
const clearArb: fc.Arbitrary<Op> = fc.constant({ kind: 'clear' as const });

const opsArb = (withClear: boolean): fc.Arbitrary<Op[]> =>
  fc.array(
    fc.oneof(
      { arbitrary: submitArb, weight: 6 },
      { arbitrary: releaseArb, weight: 3 },
      { arbitrary: cancelArb, weight: 1 },
      { arbitrary: clearArb, weight: withClear ? 1 : 0 },
    ),
    { minLength: 1, maxLength: 24 },
  );

const scenarioArb = (
  perKey: boolean,
  concurrency: fc.Arbitrary<number> = fc.integer({ min: 1, max: 5 }),
): fc.Arbitrary<Scenario> =>
  fc.record({
    concurrency,
    perKey: perKey ? fc.integer({ min: 1, max: 3 }) : fc.constant(undefined),
    ops: opsArb(false),
    drain: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
  });

const sheddingArb: fc.Arbitrary<Shedding> = fc.record({
  concurrency: fc.integer({ min: 1, max: 3 }),
  perKey: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
  maxQueue: fc.integer({ min: 0, max: 3 }),
  queueOverflow: fc.constantFrom('reject' as const, 'drop-oldest' as const),
  ops: opsArb(true),
  drain: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
});

/** One submitted task and what was seen of it. */
interface Entry {
  /** Submission order, from 0. */
  readonly id: number;
  readonly priority: number;
  readonly key: Key;
  readonly task: Task<void>;
  readonly gate: Deferred<void>;
  /** Its body was called. */
  started: boolean;
  /** Its body runs and the task was not cancelled: it holds its slots. */
  holding: boolean;
  /** Released or cancelled by the test: it will settle without anything else happening. */
  finished: boolean;
  /** How the task's promise settled (`undefined`: not yet). */
  outcome: { readonly ok: boolean; readonly value: unknown } | undefined;
}

/** An instance under test, the tasks submitted to it, and what their bodies saw. */
class Harness {
  readonly dvt: Dovetail;
  readonly entries: Entry[] = [];
  /** Ids in the order their bodies were called. */
  readonly starts: number[] = [];
  /** Limits found broken when a body was called. */
  readonly violations: string[] = [];
  readonly #concurrency: number;
  readonly #perKey: number | undefined;
  #running = 0;
  readonly #runningPerKey = new Map<string, number>();

  constructor(dvt: Dovetail, concurrency: number, perKey: number | undefined) {
    this.dvt = dvt;
    this.#concurrency = concurrency;
    this.#perKey = perKey;
  }

  submit(priority: number, key: Key): Entry {
    const id = this.entries.length;
    const gate = defer();
    const body = async (): Promise<void> => {
      this.#began(entry);
      try {
        await gate.promise;
      } finally {
        this.#let(entry);
      }
    };
    const task = this.dvt.task.with({ priority, key }).schedule(body);
    const entry: Entry = {
      id,
      priority,
      key,
      task,
      gate,
      started: false,
      holding: false,
      finished: false,
      outcome: undefined,
    };
    void task.then(
      () => (entry.outcome = { ok: true, value: undefined }),
      (error: unknown) => (entry.outcome = { ok: false, value: error }),
    );
    this.entries.push(entry);
    return entry;
  }

  /** Whether a task of `key` has room now, in the instance and in its key (as the bodies see it). */
  roomFor(key: Key): boolean {
    if (this.#running >= this.#concurrency) return false;
    return !this.#counts(key) || this.#keyRunning(key) < (this.#perKey as number);
  }

  /** Tasks whose body runs, not cancelled. */
  holding(): Entry[] {
    return this.entries.filter((entry) => entry.holding);
  }

  /** Tasks that neither started nor settled. */
  waiting(): Entry[] {
    return this.entries.filter((e) => !e.started && !e.finished && e.outcome === undefined);
  }

  /** Tasks that may still be cancelled. */
  live(): Entry[] {
    return this.entries.filter((entry) => !entry.finished && entry.outcome === undefined);
  }

  /** The running task `pick` chooses, if any runs. */
  pickRunning(pick: number): Entry | undefined {
    const running = this.holding();
    return running[pick % Math.max(1, running.length)];
  }

  /** The task still to settle that `pick` chooses, if any. */
  pickLive(pick: number): Entry | undefined {
    const live = this.live();
    return live[pick % Math.max(1, live.length)];
  }

  release(entry: Entry, fail: boolean): void {
    entry.finished = true;
    if (fail) entry.gate.reject(new Error(`task ${entry.id} failed`));
    else entry.gate.resolve();
  }

  /** Cancels `entry`; a running body goes on outside the limits, as the contract says. */
  cancel(entry: Entry): boolean {
    const cancelled = entry.task.cancel();
    if (cancelled) {
      entry.finished = true;
      this.#let(entry);
    }
    return cancelled;
  }

  /** Runs the remaining tasks to the end, releasing running ones in the order `picks` gives. */
  async drain(picks: readonly number[], after: () => void = () => undefined): Promise<void> {
    // The last tasks of a burst start now.
    await flush();
    for (let step = 0; step < 4 * this.entries.length + 4; step++) {
      // Bodies of cancelled tasks still wait on their deferred.
      for (const entry of this.entries) if (entry.started && !entry.holding) entry.gate.resolve();
      const running = this.holding();
      if (running.length === 0) break;
      this.release(
        running[(picks[step % picks.length] as number) % running.length] as Entry,
        false,
      );
      await flush();
      after();
    }
    await flush();
  }

  #counts(key: Key): key is string {
    return key !== undefined && this.#perKey !== undefined;
  }

  #keyRunning(key: string): number {
    return this.#runningPerKey.get(key) ?? 0;
  }

  #began(entry: Entry): void {
    const { key } = entry;
    if (this.#running >= this.#concurrency) {
      this.violations.push(`task ${entry.id} started with ${this.#running} running`);
    }
    if (this.#counts(key) && this.#keyRunning(key) >= (this.#perKey as number)) {
      this.violations.push(`task ${entry.id} started with ${this.#keyRunning(key)} of ${key}`);
    }
    if (entry.finished || entry.outcome !== undefined) {
      this.violations.push(`task ${entry.id} started after it was cancelled or shed`);
    }
    entry.started = true;
    entry.holding = true;
    this.starts.push(entry.id);
    this.#running += 1;
    if (this.#counts(key)) this.#runningPerKey.set(key, this.#keyRunning(key) + 1);
  }

  #let(entry: Entry): void {
    if (!entry.holding) return;
    entry.holding = false;
    this.#running -= 1;
    const { key } = entry;
    if (this.#counts(key)) this.#runningPerKey.set(key, this.#keyRunning(key) - 1);
  }
}

/**
 * The contract's schedule, replayed: a task starts when the instance has a free slot and its key
 * has room (running < perKey.concurrency); whenever a slot frees, the highest-priority,
 * earliest-submitted waiting task whose key has room starts.
 */
class Model {
  readonly starts: number[] = [];
  readonly #concurrency: number;
  readonly #perKey: number | undefined;
  readonly #waiting: { id: number; priority: number; key: Key }[] = [];
  readonly #running = new Map<number, Key>();

  constructor(concurrency: number, perKey: number | undefined) {
    this.#concurrency = concurrency;
    this.#perKey = perKey;
  }

  get active(): number {
    return this.#running.size;
  }

  get pending(): number {
    return this.#waiting.length;
  }

  /** @returns whether the task started at once. */
  submit(id: number, priority: number, key: Key): boolean {
    this.#waiting.push({ id, priority, key });
    this.#fill();
    return this.#running.has(id);
  }

  /**
   * The task settled (released or cancelled, running or waiting). `unrun`: it was cancelled
   * after it took its slot but before its body was called (in a burst), so it never started.
   */
  end(id: number, unrun = false): void {
    if (unrun && this.#running.has(id)) this.starts.splice(this.starts.indexOf(id), 1);
    this.#running.delete(id);
    const at = this.#waiting.findIndex((task) => task.id === id);
    if (at >= 0) this.#waiting.splice(at, 1);
    this.#fill();
  }

  #eligible(key: Key): boolean {
    if (key === undefined || this.#perKey === undefined) return true;
    let running = 0;
    for (const other of this.#running.values()) if (other === key) running += 1;
    return running < this.#perKey;
  }

  #fill(): void {
    while (this.#running.size < this.#concurrency) {
      let best: { id: number; priority: number; key: Key } | undefined;
      for (const task of this.#waiting) {
        if (!this.#eligible(task.key)) continue;
        // Waiting in submission order: a later task wins only with a higher priority.
        if (best === undefined || task.priority > best.priority) best = task;
      }
      if (best === undefined) return;
      this.#waiting.splice(this.#waiting.indexOf(best), 1);
      this.#running.set(best.id, best.key);
      this.starts.push(best.id);
    }
  }
}

const perKeyOption = (perKey: number | undefined): { concurrency: number } | undefined =>
  perKey === undefined ? undefined : { concurrency: perKey };

/** Replays `scenario` against the instance and the model, comparing them after every step. */
async function startsFollowTheModel(scenario: Scenario): Promise<void> {
  const { concurrency, perKey, ops, drain } = scenario;
  const dvt = create({ concurrency, perKey: perKeyOption(perKey) });
  const run = new Harness(dvt, concurrency, perKey);
  const model = new Model(concurrency, perKey);
  const compare = (step: string): void => {
    expect({ step, starts: run.starts, active: dvt.active, pending: dvt.pending }).toEqual({
      step,
      starts: model.starts,
      active: model.active,
      pending: model.pending,
    });
  };
  for (const [at, op] of ops.entries()) {
    if (op.kind === 'submit') {
      const before = [dvt.active, dvt.pending] as const;
      const entry = run.submit(op.priority, op.key);
      const now = model.submit(entry.id, op.priority, op.key);
      // Counted the moment schedule() returns, in a burst too: active if it starts at once.
      expect({ at, counted: [dvt.active, dvt.pending] }).toEqual({
        at,
        counted: now ? [before[0] + 1, before[1]] : [before[0], before[1] + 1],
      });
      if (!op.settle) continue;
    } else if (op.kind === 'release') {
      const entry = run.pickRunning(op.pick);
      if (entry === undefined) continue;
      run.release(entry, op.fail);
      model.end(entry.id);
    } else if (op.kind === 'cancel') {
      const entry = run.pickLive(op.pick);
      if (entry === undefined) continue;
      const unrun = !entry.started;
      expect(run.cancel(entry)).toBe(true);
      model.end(entry.id, unrun);
    }
    await flush();
    compare(`after op ${at} (${op.kind})`);
  }
  await run.drain(drain, () => {
    for (const entry of run.entries) if (entry.finished) model.end(entry.id);
    compare('drain');
  });
  expect(run.entries.every((entry) => entry.outcome !== undefined)).toBe(true);
}

// The smallest sequence that tells the model from an implementation in which a task that passed
// its key and waits for an instance slot keeps its key's slot: A (key x) runs; B (key y) waits
// for the instance; C (key y, priority 5) arrives. When A ends, key y has nothing running, so C
// is eligible and goes first.
const keyedPriorityExample: Scenario = {
  concurrency: 1,
  perKey: 1,
  ops: [
    { kind: 'submit', priority: 0, key: 'x', settle: true },
    { kind: 'submit', priority: 0, key: 'y', settle: true },
    { kind: 'submit', priority: 5, key: 'y', settle: true },
    { kind: 'release', pick: 0, fail: false },
  ],
  drain: [0],
};

describe('queue properties: start order', () => {
  it('starts follow priority, then submission order, on an instance without perKey (keys only label)', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb(false), startsFollowTheModel), {
      numRuns: 100,
    });
  });

  it('starts follow priority, then submission order, within each key (perKey, no instance limit)', async () => {
    // No task waits for an instance slot here, so none holds its key's slot while it waits: the
    // order of each key's own queue, with nothing of the mismatch below.
    await fc.assert(
      fc.asyncProperty(scenarioArb(true, fc.constant(Infinity)), startsFollowTheModel),
      { numRuns: 100 },
    );
  });

  // With `perKey`, a task that passed its key but has not started gives its key's slot to a
  // higher-priority task of the same key that arrives later (the example above: C before B).
  it('starts follow priority, then submission order, among the tasks whose key has room (perKey)', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb(true), startsFollowTheModel), {
      numRuns: 100,
      examples: [[keyedPriorityExample]],
      endOnFailure: true,
    });
  });
});

describe('queue properties: limits and head-of-line blocking', () => {
  it('never runs more than perKey.concurrency of a key or concurrency in all, and a task with room starts at once', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(true), async ({ concurrency, perKey, ops, drain }) => {
        const dvt = create({ concurrency, perKey: perKeyOption(perKey) });
        const run = new Harness(dvt, concurrency, perKey);
        for (const [at, op] of ops.entries()) {
          if (op.kind === 'submit') {
            const room = run.roomFor(op.key);
            const before = [dvt.active, dvt.pending];
            const entry = run.submit(op.priority, op.key);
            // Counted the moment schedule() returns: active if it can start, else pending.
            const counted = [dvt.active, dvt.pending];
            await flush();
            expect({ at, room, counted, started: entry.started }).toEqual({
              at,
              room,
              counted: room
                ? [(before[0] as number) + 1, before[1]]
                : [before[0], (before[1] as number) + 1],
              started: room,
            });
          } else if (op.kind === 'release') {
            const entry = run.pickRunning(op.pick);
            if (entry !== undefined) run.release(entry, op.fail);
            await flush();
          } else if (op.kind === 'cancel') {
            const entry = run.pickLive(op.pick);
            if (entry !== undefined) expect(run.cancel(entry)).toBe(true);
            await flush();
          }
          // A free slot is never left unused while a task that could take it waits.
          expect(run.waiting().filter((entry) => run.roomFor(entry.key))).toEqual([]);
          expect([dvt.active, dvt.pending]).toEqual([run.holding().length, run.waiting().length]);
        }
        await run.drain(drain);
        expect(run.violations).toEqual([]);
        expect(run.entries.filter((entry) => entry.outcome === undefined)).toEqual([]);
        expect([dvt.active, dvt.pending]).toEqual([0, 0]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('queue properties: shedding and clearing', () => {
  it('sheds the right task, clears the waiting ones, and balances the counters at rest', async () => {
    await fc.assert(
      fc.asyncProperty(sheddingArb, async (scenario) => {
        const { concurrency, perKey, maxQueue, queueOverflow, ops, drain } = scenario;
        const dvt = create({
          concurrency,
          perKey: perKeyOption(perKey),
          maxQueue,
          queueOverflow,
        });
        const run = new Harness(dvt, concurrency, perKey);
        const shedIds: number[] = [];
        const clearedIds: number[] = [];
        const reasons = new Map<number, unknown>();
        for (const [at, op] of ops.entries()) {
          if (op.kind === 'submit') {
            const room = run.roomFor(op.key);
            const waiting = run.waiting();
            const entry = run.submit(op.priority, op.key);
            expect(dvt.pending).toBeLessThanOrEqual(maxQueue);
            if (!room && waiting.length + 1 > maxQueue) {
              // The oldest of the lowest priority, if it is no higher than the newcomer's.
              let victim: Entry = entry;
              if (queueOverflow === 'drop-oldest') {
                const lowest = waiting.reduce<Entry | undefined>(
                  (low, e) => (low === undefined || e.priority < low.priority ? e : low),
                  undefined,
                );
                if (lowest !== undefined && lowest.priority <= entry.priority) victim = lowest;
              }
              shedIds.push(victim.id);
            }
          } else if (op.kind === 'release') {
            const entry = run.pickRunning(op.pick);
            if (entry !== undefined) run.release(entry, op.fail);
          } else if (op.kind === 'cancel') {
            const entry = run.pickLive(op.pick);
            if (entry !== undefined) expect(run.cancel(entry)).toBe(true);
          } else {
            const waiting = run.waiting();
            const reason = new Error(`cleared at ${at}`);
            expect(dvt.clearQueue(reason)).toBe(waiting.length);
            for (const entry of waiting) {
              entry.finished = true;
              clearedIds.push(entry.id);
              reasons.set(entry.id, reason);
            }
            expect(dvt.pending).toBe(0);
          }
          await flush();
          const shedNow = run.entries.filter((e) => e.outcome?.value instanceof QueueFullError);
          // In id order, as the entries are: a drop-oldest victim is older than its newcomer.
          const expected = [...shedIds].sort((a, b) => a - b);
          expect({ at, shed: shedNow.map((e) => e.id) }).toEqual({ at, shed: expected });
        }
        await run.drain(drain);
        const { entries } = run;
        // Every promise settled.
        expect(entries.filter((entry) => entry.outcome === undefined)).toEqual([]);
        const shed = entries.filter((entry) => entry.outcome?.value instanceof QueueFullError);
        for (const entry of shed) {
          expect(entry.started).toBe(false);
          expect((entry.outcome?.value as QueueFullError).maxQueue).toBe(maxQueue);
        }
        for (const id of clearedIds) {
          const value = entries[id]?.outcome?.value;
          expect(value).toBeInstanceOf(CancelledError);
          expect((value as CancelledError).cause).toBe(reasons.get(id));
          expect(entries[id]?.started).toBe(false);
        }
        const count = (test: (entry: Entry) => boolean): number => entries.filter(test).length;
        const stats = dvt.events.stats();
        expect(stats).toMatchObject({
          queued: entries.length,
          done: count((entry) => entry.outcome?.ok === true),
          cancelled: count((entry) => entry.outcome?.value instanceof CancelledError),
          error: count(
            (entry) =>
              entry.outcome?.ok === false && !(entry.outcome.value instanceof CancelledError),
          ),
          shed: shed.length,
        });
        expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
        expect(run.violations).toEqual([]);
        expect([dvt.active, dvt.pending]).toEqual([0, 0]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('queue properties: contract mismatches found while writing them', () => {
  // "cancel() of a running task frees its gate slot at once" and "a task that can start at once
  // (a free slot ...) counts in active as soon as schedule() returns": the slot passes on a
  // microtask later, but it is reserved for the task scheduled right after the cancel.
  it('a schedule() right after cancel() of the running task counts in active', async () => {
    const dvt = create({ concurrency: 1 });
    const first = dvt.task.schedule(() => new Promise<never>(() => undefined));
    await flush();
    expect(first.cancel()).toBe(true);
    const second = dvt.task.schedule(async () => 2);
    expect([dvt.active, dvt.pending]).toEqual([1, 0]);
    await expect(second).resolves.toBe(2);
  });
});
