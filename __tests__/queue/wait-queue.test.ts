// The wait queue behind every wait (gate, token, key, pause): whatever the mix of priorities and
// the order entries come in, it gives them back highest priority first, earliest `seq` first
// among equals. It moves between its three structures on the way (one ring buffer, one buffer
// per priority, a binary heap); a model (a sorted array) checks every step.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { WaitQueue } from '../../src/queue/wait-queue.js';

interface Entry {
  readonly priority: number;
  readonly seq: number;
}

type Op = { readonly kind: 'push'; readonly priority: number; readonly back: number } | 'shift';

const before = (a: Entry, b: Entry): number => b.priority - a.priority || a.seq - b.seq;

/** Runs `ops` on a queue and on the model; the two agree on every length, peek and shift. */
function check(ops: readonly Op[]): void {
  const queue = new WaitQueue<Entry>();
  const model: Entry[] = [];
  let seq = 0;
  for (const op of ops) {
    if (op === 'shift') {
      expect(queue.shift()).toBe(model.shift());
    } else {
      // `back` > 0: an entry of an earlier seq comes back (a task that lost its key's slot).
      seq += 1;
      const entry = { priority: op.priority, seq: op.back > 0 ? seq - op.back * 1000 : seq };
      queue.push(entry);
      model.push(entry);
      model.sort(before);
    }
    expect(queue.length).toBe(model.length);
    expect(queue.peek()).toBe(model[0]);
  }
  while (model.length > 0) expect(queue.shift()).toBe(model.shift());
  expect(queue.shift()).toBeUndefined();
  expect(queue.length).toBe(0);
}

const opsOf = (priority: fc.Arbitrary<number>): fc.Arbitrary<Op[]> =>
  fc.array(
    fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant('push' as const),
          priority,
          back: fc.oneof({ arbitrary: fc.constant(0), weight: 9 }, fc.integer({ min: 1, max: 3 })),
        }),
        weight: 3,
      },
      { arbitrary: fc.constant('shift' as const), weight: 2 },
    ),
    { maxLength: 200 },
  );

describe('WaitQueue', () => {
  it('a few priorities (integers, fractions, negatives): model order at every step', () => {
    const priority = fc.oneof(
      { arbitrary: fc.constant(0), weight: 4 },
      fc.integer({ min: -3, max: 9 }),
      fc.constantFrom(0.5, -1.5, 2.25),
    );
    fc.assert(fc.property(opsOf(priority), check), { numRuns: 300 });
  });

  it('more priorities than it keeps lists for: model order at every step', () => {
    fc.assert(fc.property(opsOf(fc.integer({ min: -100, max: 100 })), check), { numRuns: 200 });
  });

  it('without priorities it stays first in, first out', () => {
    const queue = new WaitQueue<Entry>();
    for (let seq = 1; seq <= 5; seq += 1) queue.push({ priority: 0, seq });
    expect([1, 2, 3, 4, 5].map(() => queue.shift()?.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('entries without priority nor seq leave in arrival order, before lower priorities', () => {
    const queue = new WaitQueue<{ priority?: number; name: string }>();
    queue.push({ name: 'a' });
    queue.push({ priority: -1, name: 'low' });
    queue.push({ name: 'b' });
    queue.push({ priority: 2, name: 'high' });
    const names: string[] = [];
    for (let entry = queue.shift(); entry !== undefined; entry = queue.shift())
      names.push(entry.name);
    expect(names).toEqual(['high', 'a', 'b', 'low']);
  });
});
